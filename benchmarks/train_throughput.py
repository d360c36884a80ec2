"""CPU training speed: what each engine option buys, measured side by side in one run.

ResNet-20 and ResNet-56 on the CIFAR-10 copy, batch 128, through ``slimlab.engine.fit`` (data,
augmentation, optimiser, metrics and checkpoints included). Every configuration trains 2 short
epochs on the same images; the second epoch's images/s is reported (after warm-up), and for
``torch.compile`` the extra time of the first epoch is reported as its compile time. A minimal
hand-written fp32 loop gives the reference of the old engine (no overhead, no speed-ups).
``--accuracy`` also trains ResNet-20 for a few epochs in fp32 and with the new defaults, to show
the same accuracy per epoch.
Usage: python benchmarks/train_throughput.py [--steps 30] [--accuracy-epochs 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _util import cifar_spec, md_table, write  # noqa: E402
from slimlab import data as D  # noqa: E402
from slimlab.config import TrainConfig  # noqa: E402
from slimlab.engine import Loaders, Objective, fit  # noqa: E402
from slimlab.engine.fit import cpu_has_fast_bf16  # noqa: E402
from slimlab.models import create_model  # noqa: E402
from slimlab.tasks.train import train  # noqa: E402

# name: (TrainConfig overrides, threads, batch)
CONFIGS = {
    "old engine default (fp32, contiguous)": ({"amp": False, "channels_last": False}, 2, 128),
    "channels_last only": ({"amp": False, "channels_last": True}, 2, 128),
    "bf16 autocast only": ({"amp": True, "channels_last": False}, 2, 128),
    "bf16 + channels_last (new default)": ({}, 2, 128),
    "new default, 1 thread": ({}, 1, 128),
    "new default, batch 256 (lr x2)": ({"lr": 0.2}, 2, 256),
    "new default + torch.compile": ({"compile": True}, 2, 128),
    "torch.compile, fp32 contiguous": ({"compile": True, "amp": False, "channels_last": False}, 2, 128),
}


def hand_loop(ds, model_name: str, steps: int, bs: int) -> float:
    """The old engine's reference: fp32, contiguous, no framework; images/s after 3 warm-up steps."""
    torch.manual_seed(0)
    model = create_model(model_name, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    mean = torch.tensor(ds.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(ds.std).view(1, 3, 1, 1) * 255
    g = torch.Generator().manual_seed(0)
    model.train()
    t0 = 0.0
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        b = torch.randint(0, len(ds.train), (bs,), generator=g)
        x = (D.random_crop_flip(ds.train.images[b], 4, True, g).float() - mean) / std
        loss = F.cross_entropy(model(x), ds.train.targets[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * bs / (time.perf_counter() - t0)


def engine(ds, model_name: str, steps: int, overrides: dict, threads: int, bs: int) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(model_name, 10)
    cfg = TrainConfig(**{"epochs": 2, "batch_size": bs, "lr": 0.1, "schedule": "cosine", "progress": "none",
                         "seed": 0, **overrides})
    idx = torch.arange(steps * bs)
    loader = D.BatchLoader(ds.train, idx, bs, mean=ds.mean, std=ds.std, shuffle=True, augment=True, drop_last=True,
                           channels_last=cfg.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        fit(model, Loaders(loader), Objective(), cfg, tmp)
        m = [json.loads(x) for x in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    torch.set_num_threads(2)
    return {"images_per_s": m[1]["images_per_s"], "epoch1_s": m[0]["epoch_s"], "epoch2_s": m[1]["epoch_s"]}


def accuracy_check(epochs: int, subset: int) -> dict:
    """ResNet-20 on ``subset`` training images: test accuracy per epoch in fp32 and with the new defaults."""
    out = {}
    for name, over in (("fp32, contiguous", {"amp": False, "channels_last": False}), ("new default", {})):
        with tempfile.TemporaryDirectory() as tmp:
            s = train(TrainConfig(data=cifar_spec(), model="resnet20", epochs=epochs, train_subset=subset,
                                  val_fraction=0.0, track_test=True, progress="log", out=tmp, **over))
            m = [json.loads(x) for x in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        out[name] = {"test_acc": [x["test_acc"] for x in m], "images_per_s": s["images_per_s"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30, help="steps per epoch for ResNet-20 (ResNet-56: a third)")
    ap.add_argument("--accuracy-epochs", type=int, default=4)
    ap.add_argument("--accuracy-subset", type=int, default=10000)
    a = ap.parse_args()
    ds = D.build(cifar_spec())
    results: dict = {"models": {}, "cpu_fast_bf16": cpu_has_fast_bf16()}
    rows = []
    for model_name, steps in (("resnet20", a.steps), ("resnet56", max(6, a.steps // 3))):
        res = {"hand-written loop (fp32)": {"images_per_s": hand_loop(ds, model_name, steps, 128)}}
        for label, (over, threads, bs) in CONFIGS.items():
            res[label] = engine(ds, model_name, steps * 128 // bs, over, threads, bs)
            print(f"{model_name} {label}: {res[label]['images_per_s']:.0f} img/s", flush=True)
        base = res["old engine default (fp32, contiguous)"]["images_per_s"]
        for label, r in res.items():
            compile_s = r["epoch1_s"] - r["epoch2_s"] if "compile" in label else None
            rows.append([model_name, label, f"{r['images_per_s']:.0f}", f"{r['images_per_s'] / base:.2f}x",
                         f"{compile_s:.0f} s" if compile_s is not None else ""])
        results["models"][model_name] = res
    acc = accuracy_check(a.accuracy_epochs, a.accuracy_subset) if a.accuracy_epochs else {}
    results["accuracy"] = acc
    table = ("Training images/s on this CPU (2 cores; bf16 autocast needs AMX or AVX512-BF16: "
             f"{'present' if results['cpu_fast_bf16'] else 'absent'}), batch 128 unless stated, second epoch "
             f"of {a.steps} (ResNet-20) / {max(6, a.steps // 3)} (ResNet-56) steps, through `slimlab.engine.fit`.\n\n"
             + md_table(["model", "configuration", "images/s", "vs old default", "compile time"], rows))
    if acc:
        head = ["epoch", *acc]
        n = len(next(iter(acc.values()))["test_acc"])
        arows = [[e + 1, *(f"{100 * v['test_acc'][e]:.2f}" for v in acc.values())] for e in range(n)]
        arows.append(["images/s (whole epochs)", *(f"{v['images_per_s']:.0f}" for v in acc.values())])
        table += (f"\n\nSame accuracy per epoch: ResNet-20, {a.accuracy_subset} training images, test accuracy (%)"
                  "\n\n" + md_table(head, arows))
    write("train_throughput", results, table)


if __name__ == "__main__":
    main()
