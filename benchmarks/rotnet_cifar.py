"""RotNet on the CIFAR-10 copy under a CPU budget: pretext accuracy, frozen-feature probes per block,
and RotNet initialisation against random initialisation with K labelled images per class.

CPU protocol (state it when reporting): NIN-4 at a reduced width (``--width``; the paper's is 1.0),
pretext training on a subset of the training images (labels never read), linear probes on each
block's frozen features, then fine-tuning from the RotNet trunk vs training from scratch with
K = 20, 100, 400 labels per class, the same epochs and optimiser for both.

Usage: python benchmarks/rotnet_cifar.py [--width 0.25] [--subset 8000] [--epochs 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import ROOT, cifar_spec, md_table, write  # noqa: E402
from _util import cached_train as run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--subset", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--probe-epochs", type=int, default=3)
    ap.add_argument("--k", default="20,100,400")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-rotnet"))
    a = ap.parse_args()
    spec = cifar_spec()
    out = Path(a.out)
    nin = {"width_mult": a.width}
    rot = run(out / "rotnet", data=spec, model="nin4", model_kwargs=nin, loss="rotnet", train_subset=a.subset,
              epochs=a.epochs, lr=0.1, schedule="step", milestones=[0.3, 0.6, 0.8], gamma=0.2, weight_decay=5e-4)
    trunk = {"trunk": "nin4", "trunk_kwargs": nin, "trunk_classes": 4, "head": "linear", "input_size": 32}
    probes = {}
    for block in (1, 2, 3, 4):
        s = run(out / f"probe-block{block}", data=spec, model="probe", model_kwargs={**trunk, "block": block},
                init=str(out / "rotnet" / "best.pt"), train_subset=a.subset, epochs=a.probe_epochs, lr=0.1,
                weight_decay=5e-4)
        probes[block] = s["test_acc"]
    few = {}
    for k in [int(x) for x in a.k.split(",")]:
        epochs = max(6, min(25, 25000 // (10 * k)))  # a similar number of steps for each K
        common = {"data": spec, "model": "nin4", "model_kwargs": nin, "labels_per_class": k, "epochs": epochs,
                  "lr": 0.05, "batch_size": 64, "weight_decay": 5e-4}
        scratch = run(out / f"k{k}-scratch", **common)
        init = run(out / f"k{k}-rotnet", init=str(out / "rotnet" / "best.pt"), **common)
        few[k] = {"scratch": scratch["test_acc"], "rotnet_init": init["test_acc"], "epochs": epochs}
    rows = [[f"block {b}", f"{100 * v:.2f}"] for b, v in probes.items()]
    table = (f"NIN-4 at width x{a.width} (the paper: x1.0), RotNet pretext on {a.subset} images of the CIFAR-10 "
             "copy for "
             f"{a.epochs} epochs (lr 0.1, x0.2 at 30/60/80%); CPU budget. Pretext (rotation) accuracy on the test "
             f"images: {100 * rot['test_acc']:.2f}% (chance 25%).\n\nLinear probes ({a.probe_epochs} epochs) on each "
             "block's frozen features, test accuracy:\n\n" + md_table(["features", "test acc (%)"], rows)
             + "\n\nK labelled images per class, same epochs and optimiser:\n\n"
             + md_table(["K", "epochs", "random init (%)", "RotNet init (%)"],
                        [[k, v["epochs"], f"{100 * v['scratch']:.2f}", f"{100 * v['rotnet_init']:.2f}"]
                         for k, v in few.items()]) + "\n")
    write("rotnet_cifar", {"args": vars(a), "pretext_test_acc": rot["test_acc"], "probe_test_acc": probes,
                           "few_labels": few}, table)


if __name__ == "__main__":
    main()
