"""``slimlab profile``: params, multiply-adds and latency (PyTorch and ONNX Runtime) of a model or runs."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from slimlab.engine import checkpoint_image_size, load_checkpoint
from slimlab.errors import SlimlabError
from slimlab.export import onnx_latency, onnx_runners
from slimlab.io import atomic_write_json
from slimlab.models import create_model, get_entry
from slimlab.models.io import model_from_checkpoint
from slimlab.profile import count_macs, count_params, profile_model
from slimlab.profile.latency import timed_many
from slimlab.tasks.common import macs_or_refuse, refuse_foreign_file, refuse_if_too_big


@dataclass
class ProfileConfig:
    POSITIONAL = ("model",)
    NARGS = {"batch": int, "runs": str}
    OPTIONAL_POSITIONAL = ("model",)  # --runs A B C stands in for it
    RANGES = {"input_size": "0 or [8, 4096]", "num_classes": ">= 0", "batch": "[1, 4096]", "threads": "[0, 4096]",
              "iters": "[1, 100000]"}

    model: str = ""  # registry name, tv:NAME, or a checkpoint / run directory
    runs: list = field(default_factory=list)  # instead of model: run directories (writes OUT/profile.json)
    input_size: int = 0  # default: the model's (32 for CIFAR models)
    num_classes: int = 0
    batch: list = field(default_factory=lambda: [1, 64])  # batch sizes
    threads: int = 0  # CPU threads (default: torch's; with --runs 1, as MobileNet V2/V3 report single-core latency)
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


def _profile_rows(text: str) -> bool:
    """Whether a profile.json is one ``profile --runs`` wrote: a row per run, each with its params and timing."""
    import json

    rows = json.loads(text)
    return isinstance(rows, dict) and all(isinstance(r, dict) and {"params", "torch_ms"} <= set(r)
                                          for r in rows.values())


def run(cfg: ProfileConfig) -> dict:
    """``slimlab profile``: parameters, MACs and latency (PyTorch and ONNX Runtime) of a model or of runs
    timed interleaved."""
    if bool(cfg.runs) == bool(cfg.model):
        raise SlimlabError("profile: give a model (a name, checkpoint or run directory) or --runs A B C, not both")
    if cfg.runs:
        refuse_foreign_file(Path(cfg.out or ".") / "profile.json", _profile_rows, "profile")
        return profile_runs(cfg.runs, Path(cfg.out or "."), onnx=cfg.onnx, iters=cfg.iters, threads=cfg.threads or 1)
    model, size, name = model_or_checkpoint(cfg.model, cfg.input_size, cfg.num_classes)
    macs_or_refuse(model, name, size, flag="--input-size")
    if cfg.device == "cpu":  # host memory; a GPU reports its own out-of-memory error
        refuse_if_too_big(model, name, size, max(cfg.batch))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    r = profile_model(model, size, tuple(cfg.batch), threads=cfg.threads or None, iters=cfg.iters, device=cfg.device)
    r["model"] = name
    if cfg.onnx:
        r["onnx"] = [onnx_latency(model, size, b, iters=cfg.iters, threads=cfg.threads or None) for b in cfg.batch]
    return r


def profile_runs(runs: list[str], out: Path, onnx: bool = True, iters: int = 20, threads: int = 1) -> dict:
    """Params, MACs, PyTorch and ONNX Runtime CPU latency (batch 1) of every run's model -> ``out``/profile.json.

    The models are timed interleaved (:func:`timed_many`), so they are compared under the same conditions, on
    ``threads`` threads: 1 by default, as MobileNet V2/V3 report single-core latency. (On 2 cores, sessions of
    a 0.2 ms model on 2 threads each spread by 45% when interleaved, on 1 thread by 15-20%.)
    The runs measured are only read: ``slimlab report --profiles`` shows these latencies beside them."""
    loaded = {}
    for r in runs:
        ck = load_checkpoint(r)
        loaded[str(r)] = (str(Path(ck["path"]).parent.resolve()), model_from_checkpoint(ck).eval(),
                          checkpoint_image_size(ck))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            eager = timed_many({r: partial(m, torch.randn(1, 3, s, s)) for r, (_, m, s) in loaded.items()},
                               warmup=5, min_blocks=iters)
    finally:
        torch.set_num_threads(old)
    rows = {r: {"params": count_params(m), "macs": count_macs(m, s), "torch_ms": eager[r]["median_ms"],
                "torch_p10_ms": eager[r]["p10_ms"], "torch_p90_ms": eager[r]["p90_ms"], "stable": eager[r]["stable"],
                "threads": threads, "run": run_dir}
            for r, (run_dir, m, s) in loaded.items()}
    if onnx:
        with tempfile.TemporaryDirectory() as tmp:
            runners = onnx_runners({r: (m, s) for r, (_, m, s) in loaded.items()}, tmp, threads=threads)
            timings = timed_many(runners, warmup=5, min_blocks=iters)
            del runners  # the sessions go before their files
        for r, o in timings.items():
            rows[r].update(onnx_ms=o["median_ms"], onnx_p10_ms=o["p10_ms"], onnx_p90_ms=o["p90_ms"],
                           stable=rows[r]["stable"] and o["stable"])
    atomic_write_json(out / "profile.json", rows)
    return {"models": len(rows), "rows": rows, "path": str(out / "profile.json")}
