"""Efficient architectures on the CIFAR-10 copy under one CPU budget: accuracy, MACs and measured latency.

mobilenet_v1 at alpha in {0.25, 0.5, 1.0}, mobilenet_v2, mobilenet_v3_small, efficientnet_b0 compound-scaled at
phi in {-1, 0, 1} (alpha=1.2, beta=1.1, gamma=1.15 on B0's table; resolution scaled from 32), ResNet-20 and
ResNet-56. All with ``cifar_stem`` where it applies, the same subset, epochs and optimiser. Also a measured
note on depthwise convolutions: MACs against CPU time of a depthwise-separable block vs a dense 3x3 conv.

Usage: python benchmarks/efficient_cifar.py [--train-subset 3000] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).parent))
from _util import RESULTS, ROOT, cifar_spec, md_table, write  # noqa: E402
from slimlab import api  # noqa: E402
from slimlab.config import TrainConfig  # noqa: E402
from slimlab.models import create_model  # noqa: E402
from slimlab.profile import count_macs, measure_latency  # noqa: E402
from slimlab.scaling.search import scale  # noqa: E402


def configs() -> list[tuple[str, str, dict, int]]:
    out = [(f"mobilenet_v1 a={a}", "mobilenet_v1", {"width_mult": a, "cifar_stem": True, "dropout": 0.0}, 32)
           for a in (0.25, 0.5, 1.0)]
    out += [("mobilenet_v2", "mobilenet_v2", {"cifar_stem": True}, 32),
            ("mobilenet_v3_small", "mobilenet_v3_small", {"cifar_stem": True}, 32),
            ("mobilenet_v3_small bn_m=0.1", "mobilenet_v3_small", {"cifar_stem": True, "bn_momentum": 0.1}, 32)]
    for phi in (-1, 0, 1):
        s = scale("efficientnet_b0", phi, 1.2, 1.1, 1.15, base_resolution=32)
        # PyTorch's BN settings: short runs (the TF reference's momentum 0.01 barely moves the statistics)
        out.append((f"efficientnet_b0 phi={phi}", "efficientnet_b0",
                    {**s.model_kwargs, "cifar_stem": True, "bn_eps": 1e-5, "bn_momentum": 0.1}, s.resolution))
    out += [("resnet20", "resnet20", {}, 32), ("resnet56", "resnet56", {}, 32)]
    return out


def depthwise_note() -> dict:
    """MACs vs CPU time: a dense 3x3 conv against a depthwise-separable block of the same shape."""
    c, hw = 128, 16
    dense = nn.Conv2d(c, c, 3, padding=1, bias=False)
    sep = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False))
    dw_only = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
    pw_only = nn.Conv2d(c, c, 1, bias=False)

    def lat(m):
        x_size = hw
        m = m.eval()
        r = measure_latency(_Wrap(m, c), x_size, 32, warmup=3, iters=15)
        return r["median_ms"]

    out = {}
    for name, m in (("dense 3x3", dense), ("depthwise-separable", sep), ("depthwise 3x3 alone", dw_only),
                    ("pointwise 1x1 alone", pw_only)):
        macs = count_macs(m, hw, in_chans=c)
        ms = lat(m)
        out[name] = {"macs_per_image": macs, "ms_batch32": ms, "gmacs_per_s": 32 * macs / (ms / 1000) / 1e9}
    return out


class _Wrap(nn.Module):
    """Feeds a C-channel input to the module (measure_latency makes 3-channel inputs)."""

    def __init__(self, m: nn.Module, c: int):
        super().__init__()
        self.m, self.c = m, c

    def forward(self, x):
        return self.m(x.repeat(1, (self.c + 2) // 3, 1, 1)[:, : self.c])


def _latency(m: nn.Module, res: int) -> tuple[float, float]:
    return (measure_latency(m, res, 1, warmup=5, iters=30)["median_ms"],
            measure_latency(m, res, 64, warmup=2, iters=5)["median_ms"])


def _row(label: str, res: int, r: dict) -> list:
    return [label, res, f"{r['params'] / 1e6:.3f}", f"{r['macs'] / 1e6:.1f}", f"{100 * r['test_acc']:.2f}",
            f"{r['latency_ms_b1']:.2f}", f"{r['latency_ms_b64']:.1f}", f"{r['train_images_per_s']:.0f}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-subset", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-efficient"))
    ap.add_argument("--only", default="", help="comma-separated labels to run (default: all)")
    ap.add_argument("--latency-only", action="store_true",
                    help="re-measure latency (it needs no weights) on a quiet machine; keep the recorded accuracy")
    a = ap.parse_args()
    spec = cifar_spec()
    rows, results = [], {}
    previous = RESULTS / "efficient_cifar.json"
    if (a.only or a.latency_only) and previous.is_file():  # re-measure some rows, keep the others as they were
        results = json.loads(previous.read_text())["results"]
    for label, name, kw, res in configs():
        m = create_model(name, 10, **kw)
        if (a.only and label not in a.only.split(",")) or a.latency_only:
            if label in results:
                r = results[label]
                if a.latency_only:
                    r["latency_ms_b1"], r["latency_ms_b64"] = _latency(m, res)
                rows.append(_row(label, res, r))
            continue
        out = Path(a.out) / label.replace(" ", "_").replace("=", "")
        if (out / "summary.json").is_file():
            s = json.loads((out / "summary.json").read_text())
        else:
            s = api.train(TrainConfig(data=spec, model=name, model_kwargs=kw, image_size=res if res != 32 else 0,
                                      train_subset=a.train_subset, epochs=a.epochs, lr=0.05, batch_size=128,
                                      weight_decay=4e-5 if "mobile" in name or "eff" in name else 5e-4,
                                      out=str(out), progress="log"))
        lat1, lat64 = _latency(m, res)
        results[label] = {"test_acc": s["test_acc"], "params": s["params"], "macs": count_macs(m, res),
                          "resolution": res, "latency_ms_b1": lat1, "latency_ms_b64": lat64,
                          "train_images_per_s": s["images_per_s"]}
        rows.append(_row(label, res, results[label]))
        print(rows[-1], flush=True)
    note = depthwise_note()
    _plot(results)
    table = (f"CIFAR-10 copy, {a.train_subset}-image stratified subset, {a.epochs} epochs, SGD lr 0.05 cosine, "
             "batch 128"
             f" (CPU budget: far below the models' full training); test: all 10,000 images. Latency: CPU, "
             f"{torch.get_num_threads()} threads, median.\n\n"
             + md_table(["model", "input", "params (M)", "MACs (M)", "test acc (%)", "latency b1 (ms)",
                         "latency b64 (ms)", "train img/s"], rows)
             + "\n\nDepthwise convolutions on this CPU (128 channels, 16x16, batch 32):\n\n"
             + md_table(["layer", "MACs / image", "ms (batch 32)", "GMAC/s"],
                        [[k, f"{v['macs_per_image'] / 1e6:.2f}M", f"{v['ms_batch32']:.2f}", f"{v['gmacs_per_s']:.1f}"]
                         for k, v in note.items()]) + "\n")
    write("efficient_cifar", {"args": vars(a), "results": results, "depthwise": note}, table)


def _plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for label, r in results.items():
        for ax, x in ((axes[0], r["macs"] / 1e6), (axes[1], r["latency_ms_b1"])):
            ax.scatter(x, 100 * r["test_acc"])
            ax.annotate(label, (x, 100 * r["test_acc"]), fontsize=6)
    axes[0].set(xscale="log", xlabel="MACs (M, log)", ylabel="test accuracy (%)")
    axes[1].set(xscale="log", xlabel="CPU latency, batch 1 (ms, log)", ylabel="test accuracy (%)")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "efficient_cifar.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
