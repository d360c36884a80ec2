"""What ``--round-to 8`` does to accuracy and CPU latency at (nearly) equal MACs (issue 21).

Two parts, each cell resumable from ``benchmarks/results/round_to.json``:

- **accuracy**: ``zoo:resnet20-cifar10`` pruned by ThiNet to at most ``--target-macs`` of its MACs, with
  round_to 1 and 8, BatchNorm re-estimated on 1,000 training images, no fine-tuning; test accuracy on
  the 10,000 test images, and latency of both models at 32 px;
- **latency**: timm's resnet18 (ImageNet shape, untrained: latency does not depend on the weights)
  pruned by weight sum to at most ``--target-macs`` with round_to 1 and 8, at 224 px, batch 1 and 8.

Latency: eager PyTorch and ONNX Runtime on the CPU, each timed by slimlab's timer (``profile.latency.timed``:
blocks of ~50 ms, at least 3 s after warm-up, re-measured while the spread is large); the median over blocks
with p10 and p90.

    python benchmarks/round_to.py [--target-macs 0.6]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import RESULTS, cifar_spec, machine, md_table  # noqa: E402

WORK = Path(tempfile.gettempdir()) / "slimlab-round-to"


def latency(model: torch.nn.Module, size: int, batch: int) -> dict:
    from slimlab.export import _session, export_onnx
    from slimlab.profile.latency import timed

    model = model.cpu().eval()
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        eager = timed(lambda: model(x), min_s=3.0)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "m.onnx"
        export_onnx(model, p, size, check=False)
        sess = _session(p)
        xn = x.numpy().astype(np.float32)
        ort = timed(lambda: sess.run(None, {"image": xn}), min_s=3.0)
    return {"eager": eager, "onnxruntime": ort}


def accuracy_cell(round_to: int, target: float) -> dict:
    from slimlab import api
    from slimlab.engine import load_checkpoint
    from slimlab.models.io import model_from_checkpoint
    from slimlab.prune import PruneConfig

    out = WORK / f"r20-thinet-t{target}-round{round_to}"
    s = api.prune(PruneConfig(checkpoint="zoo:resnet20-cifar10", data=cifar_spec(), method="thinet", target_macs=target,
                              round_to=round_to, ft_layer_epochs=0, latency=False, out=str(out), overwrite=True,
                              progress="none"))
    model = model_from_checkpoint(load_checkpoint(out / "best.pt"))
    return {"test_acc": s["pruned"]["test_acc"], "test_acc_before_bn": s["pruned"]["test_acc_before_bn"],
            "original_acc": s["original"]["test_acc"], "macs": s["macs"], "params": s["params"],
            "macs_reduction": s["macs_reduction"], "channels": s["channels"], "keep_ratio": s["keep_ratio"],
            "latency": {f"batch{b}": latency(model, 32, b) for b in (1, 64)}}


def latency_cell(round_to: int, target: float) -> dict:
    from slimlab.models import create_model
    from slimlab.prune import prune_module

    model = create_model("timm:resnet18", 1000).eval()
    x = torch.randn(8, 3, 224, 224)
    _, rep = prune_module(model, [x], method="weight_sum", target_macs=target, round_to=round_to, recalibrate=False)
    return {"macs": rep.macs_after, "macs_reduction": rep.macs_reduction, "params": rep.params_after,
            "channels": rep.channels, "keep_ratio": rep.keep_ratio,
            "latency": {f"batch{b}": latency(model, 224, b) for b in (1, 8)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target-macs", type=float, default=0.6)
    args = ap.parse_args()
    torch.set_num_threads(2)
    path = RESULTS / "round_to.json"
    done = json.loads(path.read_text()) if path.is_file() else {"cells": {}}
    for part, fn in (("resnet20-cifar10 thinet", accuracy_cell), ("timm resnet18 weight_sum", latency_cell)):
        for r in (1, 8):
            key = f"{part} t{args.target_macs} round_to {r}"
            if key in done["cells"]:
                continue
            print(f"{key} ...", flush=True)
            done["cells"][key] = fn(r, args.target_macs)
            done["machine"] = {**machine(), "bf16_autocast": False, "precision": "fp32 (inference)"}
            path.write_text(json.dumps(done, indent=2) + "\n")
    report(done)


def _lat(c: dict, batch: str, rt: str) -> str:
    m = c["latency"][batch][rt]
    return f"{m['median_ms']:.2f} ({m['p10_ms']:.2f}-{m['p90_ms']:.2f})"


def verdicts(done: dict) -> str:
    """The claim behind --round-to (Torch-Pruning #22, #149: widths that are multiples of 8 run faster), per runtime,
    on the batch-B ONNX Runtime and eager medians of each pair. No published figure exists for these models."""
    lines = []
    for part in ("resnet20-cifar10 thinet", "timm resnet18 weight_sum"):
        pair = [c for k, c in done["cells"].items() if k.startswith(part)]
        if len(pair) != 2:
            continue
        b = sorted(pair[0]["latency"])[-1]
        for rt, label in (("onnxruntime", "ONNX Runtime"), ("eager", "eager PyTorch")):
            m1, m8 = (c["latency"][b][rt] for c in pair)
            # a difference counts only where the p10-p90 ranges do not overlap
            v = ("holds" if m8["p90_ms"] < m1["p10_ms"] else "does not hold" if m8["p10_ms"] > m1["p90_ms"]
                 else "does not hold (within the p10-p90 spread)")
            lines.append(f"- {part}, {label}, {b}: {m1['median_ms']:.2f} -> {m8['median_ms']:.2f} ms: 'rounded widths "
                         f"run faster' **{v}**")
    return "\n".join(lines) + ("\n\nThe accuracy pair differs in MACs (rounding moves in steps), so it does not "
                               "isolate the rounding.\n" if lines else "")


def report(done: dict) -> None:
    rows = []
    for key, c in done["cells"].items():
        b = sorted(c["latency"])
        acc = f"{100 * c['test_acc']:.2f} ({100 * c['test_acc_before_bn']:.2f})" if "test_acc" in c else "-"
        kept = sorted({k for _, k in c["channels"].values()})
        rows.append([key, f"{c['macs'] / 1e6:.1f}M ({c['macs_reduction']:.2f}x)", f"{c['params'] / 1e6:.3f}M",
                     " ".join(map(str, kept)), acc] + [_lat(c, bb, rt) for bb in b for rt in ("eager", "onnxruntime")])
    m = done["machine"]
    text = ("# --round-to 8 at equal MACs target: accuracy and CPU latency\n\n"
            f"CPU: {m['cpu']}, {m['threads']} threads, fp32 inference (no autocast). Latency in ms: median over "
            "timed blocks (p10-p90). Accuracy: ThiNet on zoo:resnet20-cifar10, BatchNorm re-estimated on 1,000 "
            "training images, no fine-tuning (before re-estimation in brackets); 10,000 test images.\n\n"
            + md_table(["cell", "MACs", "params", "kept widths", "test acc (%)",
                        "batch A eager", "batch A ORT", "batch B eager", "batch B ORT"], rows)
            + "\n\nBatch A/B: 1/64 for ResNet-20 at 32 px, 1/8 for resnet18 at 224 px.\n\n" + verdicts(done))
    (RESULTS / "round_to.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
