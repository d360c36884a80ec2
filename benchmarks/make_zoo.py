"""Add a finished run to the zoo: ``python benchmarks/make_zoo.py RUN_DIR NAME``.

Copies the final weights (``last.pt`` without the optimiser state) as ``zoo/NAME/model.pt`` with the
run's config.yaml, metrics.jsonl, summary.json and curves.png, and records in the summary the test
accuracy that ``slimlab evaluate`` measures on the whole test set and on its first 1,000 images
(what the zoo test reproduces).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from slimlab.engine import load_checkpoint
from slimlab.io import atomic_save, atomic_write_json
from slimlab.tasks.evaluate import EvaluateConfig, run
from slimlab.zoo import zoo_dir


def main(run_dir: str, name: str) -> None:
    src = Path(run_dir)
    dst = zoo_dir() / name
    dst.mkdir(parents=True, exist_ok=True)
    ck = torch.load(src / "last.pt", weights_only=True, map_location="cpu")
    ck.pop("optimizer", None)
    ck["state_dict"] = {k: v.contiguous() for k, v in ck["state_dict"].items()}
    atomic_save(ck, dst / "model.pt")
    for f in ("config.yaml", "metrics.jsonl", "curves.png"):
        if (src / f).is_file():
            shutil.copy(src / f, dst / f)
    summary = json.loads((src / "summary.json").read_text())
    data = load_checkpoint(dst / "model.pt")["config"]["data"]
    full = run(EvaluateConfig(checkpoint=str(dst / "model.pt"), data=data))
    first = run(EvaluateConfig(checkpoint=str(dst / "model.pt"), data=data, test_subset=1000))
    epochs = [json.loads(x) for x in (src / "metrics.jsonl").read_text().splitlines() if x]
    median_epoch_s = sorted(m["epoch_s"] for m in epochs)[len(epochs) // 2]
    summary.update(test_acc_evaluate=full["test_acc"], test_acc_first1000=first["test_acc"],
                   median_epoch_s=median_epoch_s, train_hours=median_epoch_s * len(epochs) / 3600,
                   data_name="cifar10")
    atomic_write_json(dst / "summary.json", summary)
    print(f"{name}: recorded test {100 * summary['test_acc']:.2f}%, evaluate {100 * full['test_acc']:.2f}% "
          f"(first 1000: {100 * first['test_acc']:.2f}%), {summary['train_hours']:.2f} h of training")


if __name__ == "__main__":
    main(*sys.argv[1:3])
