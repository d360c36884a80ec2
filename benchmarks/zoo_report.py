"""The zoo's table and plot: test accuracy against epochs and against training time, with the
published figures beside ours. Reads each zoo entry's metrics.jsonl and summary.json; writes
benchmarks/results/zoo.{json,md,png}. Usage: python benchmarks/zoo_report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import RESULTS, md_table, write  # noqa: E402
from slimlab.io import pyplot, save_figure  # noqa: E402
from slimlab.zoo import entries  # noqa: E402

# He et al. 2016, Table 6 (CIFAR-10 test accuracy, 164 epochs on the original images); our goals (issue 11)
PUBLISHED = {"resnet20": 91.25, "resnet56": 93.03}
GOALS = {"resnet20": 91.0, "resnet56": 92.5}


def main() -> None:
    rows, data = [], {}
    fig, ax = pyplot().subplots(1, 2, figsize=(10, 3.6))
    for name, s in entries().items():
        metrics = [json.loads(x) for x in (Path(s["dir"]) / "metrics.jsonl").read_text().splitlines() if x]
        pts = [(m["epoch"], 100 * m["test_acc"]) for m in metrics if "test_acc" in m]
        hours = [s["median_epoch_s"] * e / 3600 for e, _ in pts]
        ax[0].plot(*zip(*pts), label=name)
        ax[1].plot(hours, [a for _, a in pts], label=name)
        model, acc = s["model"], 100 * s["test_acc"]
        goal = GOALS.get(model)
        rows.append([f"zoo:{name}", s["epochs"], f"{acc:.2f}", f"{PUBLISHED.get(model, float('nan')):.2f}",
                     f"{goal:.1f}" if goal else "-", ("met" if acc >= goal else "not met") if goal else "-",
                     f"{s['train_hours']:.2f} h", f"{s['median_epoch_s']:.0f} s",
                     f"{100 * s['test_acc_evaluate']:.2f}"])
        data[name] = {"test_acc": s["test_acc"], "curve": pts, "train_hours": s["train_hours"]}
    for a, xl in ((ax[0], "epoch"), (ax[1], "training time on 2 CPU cores (h)")):
        a.set(xlabel=xl, ylabel="test accuracy (%)")
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    save_figure(fig, RESULTS / "zoo.png")
    table = ("The zoo: trained by the `fast_cifar10` recipe on all 50,000 training images of the CIFAR-10 "
             "copy (JPEG re-encoded), bf16 autocast on 2 CPU cores. Published: He et al. 2016 (164 epochs, "
             "original images). Time = median epoch time x epochs (epochs paused by other jobs excluded); "
             "per-epoch test evaluation not included.\n\n"
             + md_table(["model", "epochs", "test acc (%)", "published (%)", "goal (%)", "goal", "training time",
                         "per epoch", "slimlab evaluate (%)"], rows) + "\n\n![zoo](zoo.png)" + limit())
    write("zoo", data, table)


def limit() -> str:
    """What limits ResNet-20 (issue 20): zoo_gap.py's two loops, side by side, once both are done."""
    from zoo_gap import verdict

    path = RESULTS / "zoo_gap.json"
    v = verdict(json.loads(path.read_text())["cells"], 20) if path.is_file() else None
    return f"\n\n## What limits ResNet-20\n\n{v} Table: `zoo_gap.md`." if v else ""


if __name__ == "__main__":
    main()
