"""``slimlab profile``: params, multiply-adds and latency (PyTorch and ONNX Runtime) of a model or runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from slimlab.engine import checkpoint_image_size, load_checkpoint
from slimlab.export import onnx_latency
from slimlab.io import atomic_write_json
from slimlab.models import create_model, get_entry
from slimlab.models.io import model_from_checkpoint
from slimlab.profile import count_macs, count_params, measure_latency, profile_model


@dataclass
class ProfileConfig:
    POSITIONAL = ("model",)
    NARGS = {"batch": int}
    RANGES = {"input_size": "0 or [8, 4096]", "num_classes": ">= 0", "batch": "[1, 4096]", "threads": "[0, 4096]",
              "iters": "[1, 100000]"}

    model: str = ""  # registry name, tv:NAME, or a checkpoint / run directory
    runs: list = field(default_factory=list)  # instead of model: run directories (writes OUT/profile.json)
    input_size: int = 0  # default: the model's (32 for CIFAR models)
    num_classes: int = 0
    batch: list = field(default_factory=lambda: [1, 64])  # batch sizes
    threads: int = 0  # CPU threads (default: torch's)
    iters: int = 20
    device: str = "cpu"
    onnx: bool = True  # also ONNX Runtime latency
    out: str = ""


Config = ProfileConfig


def model_or_checkpoint(spec: str, input_size: int = 0, num_classes: int = 0):
    """A registry name or a checkpoint path / run directory / zoo name -> (model, input size, label)."""
    if Path(spec).exists() or spec.startswith("zoo:"):
        ck = load_checkpoint(spec)
        return model_from_checkpoint(ck), input_size or checkpoint_image_size(ck), f"{ck['model_name']} ({ck['path']})"
    e = get_entry(spec)
    return create_model(spec, num_classes or (10 if e.input_size == 32 else 1000)), input_size or e.input_size, spec


def run(cfg: ProfileConfig) -> dict:
    if cfg.runs:
        return profile_runs(cfg.runs, Path(cfg.out or "."), onnx=cfg.onnx, iters=cfg.iters)
    model, size, name = model_or_checkpoint(cfg.model, cfg.input_size, cfg.num_classes)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    r = profile_model(model, size, tuple(cfg.batch), threads=cfg.threads or None, iters=cfg.iters, device=cfg.device)
    r["model"] = name
    if cfg.onnx:
        r["onnx"] = [onnx_latency(model, size, b, iters=cfg.iters) for b in cfg.batch]
    return r


def profile_runs(runs: list[str], out: Path, onnx: bool = True, iters: int = 20) -> dict:
    """Params, MACs, PyTorch and ONNX Runtime CPU latency (batch 1) of every run's model -> ``out``/profile.json.
    The runs measured are only read: ``slimlab report --profiles`` shows these latencies beside them."""
    rows = {}
    for r in runs:
        ck = load_checkpoint(r)
        model = model_from_checkpoint(ck).eval()
        size = checkpoint_image_size(ck)
        eager = measure_latency(model, size, 1, warmup=5, iters=iters)
        row = {"params": count_params(model), "macs": count_macs(model, size), "torch_ms": eager["median_ms"],
               "torch_p10_ms": eager["p10_ms"], "torch_p90_ms": eager["p90_ms"], "stable": eager["stable"],
               "threads": torch.get_num_threads(), "run": str(Path(ck["path"]).parent.resolve())}
        if onnx:
            o = onnx_latency(model, size, 1, iters=iters)
            row.update(onnx_ms=o["median_ms"], onnx_p10_ms=o["p10_ms"], onnx_p90_ms=o["p90_ms"],
                       stable=row["stable"] and o["stable"])
        rows[str(r)] = row
    atomic_write_json(out / "profile.json", rows)
    return {"models": len(rows), "rows": rows}
