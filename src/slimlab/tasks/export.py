"""``slimlab export``: a run's model as ONNX (checked against ONNX Runtime) or TorchScript."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from slimlab.engine import checkpoint_image_size, load_checkpoint
from slimlab.errors import SlimlabError
from slimlab.export import export_onnx, export_torchscript, written_by_slimlab
from slimlab.models.io import model_from_checkpoint


@dataclass
class ExportConfig:
    POSITIONAL = ("run",)
    CHOICES = {"format": ("onnx", "torchscript")}
    RANGES = {"input_size": "0 or [8, 4096]"}

    run: str = ""  # run directory or checkpoint; "best": the most accurate of --candidates
    format: str = "onnx"  # onnx | torchscript
    out: str = ""  # output file, or a directory (default: beside the checkpoint)
    input_size: int = 0
    candidates: list = field(default_factory=list)  # run directories to choose from with run=best
    overwrite: bool = False  # replace an existing --out file that slimlab did not write


Config = ExportConfig


def best_run(runs: list[str]) -> str:
    """The run with the highest test accuracy in its summary.json."""
    best, best_acc = None, -1.0
    for r in runs:
        s = Path(r) / "summary.json"
        if s.is_file():
            acc = json.loads(s.read_text()).get("test_acc") or 0.0
            if acc > best_acc:
                best, best_acc = r, acc
    if best is None:
        raise SlimlabError("export: none of the candidate runs has a summary.json")
    return best


def run(cfg: ExportConfig) -> dict:
    if not cfg.run:
        raise SlimlabError("export: give the run (a run directory or checkpoint)")
    src = best_run(cfg.candidates) if cfg.run == "best" else cfg.run
    ck = load_checkpoint(src)
    model = model_from_checkpoint(ck)
    size = cfg.input_size or checkpoint_image_size(ck)
    name = "model.onnx" if cfg.format == "onnx" else "model.ts.pt"
    default_dir = Path("runs") / src[4:] if src.startswith("zoo:") else Path(ck["path"]).parent  # zoo: read-only
    path = Path(cfg.out) if cfg.out else default_dir / name
    if cfg.out and (path.is_dir() or not path.suffix):
        path = path / name
    if path.exists() and not cfg.overwrite and not written_by_slimlab(path):
        raise SlimlabError(f"{path} exists and was not written by slimlab export: choose another --out, or "
                           "--overwrite to replace it")
    r = export_onnx(model, path, size) if cfg.format == "onnx" else export_torchscript(model, path, size)
    r["from"] = str(src)
    return r
