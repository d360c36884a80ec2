"""``slimlab export``: a run's model as ONNX (checked against ONNX Runtime) or TorchScript."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from slimlab.engine import checkpoint_image_size, load_checkpoint
from slimlab.errors import SlimlabError
from slimlab.export import export_onnx, export_torchscript, onnx_latency, written_by_slimlab
from slimlab.io import atomic_write_json
from slimlab.models.io import model_from_checkpoint


@dataclass
class ExportConfig:
    POSITIONAL = ("run",)
    CHOICES = {"format": ("onnx", "torchscript"), "select": ("smallest", "fastest", "accurate")}
    NARGS = {"candidates": str}  # --candidates A B C (or A,B,C)
    RANGES = {"input_size": "0 or [8, 4096]", "tolerance": "[0, 100]"}

    run: str = ""  # run directory or checkpoint; "best": choose among --candidates by --select
    format: str = "onnx"  # onnx | torchscript
    out: str = ""  # output file, or a directory (default: beside the checkpoint)
    input_size: int = 0
    candidates: list = field(default_factory=list)  # run directories to choose from with run=best
    select: str = "smallest"  # run=best: fewest MACs | lowest ONNX Runtime latency | most accurate, within --tolerance
    tolerance: float = 0.5  # run=best: accuracy points below the most accurate candidate that still qualify
    overwrite: bool = False  # replace an existing --out file that slimlab did not write


Config = ExportConfig


def _summary(run: str) -> dict | None:
    f = Path(run) / "summary.json"
    if not f.is_file():
        return None
    try:
        s = json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError):
        raise SlimlabError(f"export: {f} is not valid JSON") from None
    return s if isinstance(s, dict) else None


def _number(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 else None


def choose_run(runs: list[str], select: str = "smallest", tolerance: float = 0.5,
               latency=None) -> tuple[str, str]:
    """(the run to deploy, why). Candidates within ``tolerance`` accuracy points of the most accurate qualify;
    among them ``smallest`` takes the fewest MACs, ``fastest`` the lowest ``latency(run)`` (ms), ``accurate`` the
    most accurate. Accuracy is the validation accuracy when every candidate has one (the test set does not
    choose), else the test accuracy (a run without a validation split records its best *training* accuracy,
    which does not count), and the reason says which."""
    found = {r: s for r in runs if (s := _summary(r)) is not None}
    if not found:
        raise SlimlabError("export: none of the candidate runs has a summary.json")
    has_val = all(_number(s.get("best_val_acc")) is not None and s.get("best_on", "validation") == "validation"
                  for s in found.values())
    key, label = ("best_val_acc", "validation accuracy") if has_val else ("test_acc", "test accuracy")
    acc = {r: _number(s.get(key)) or 0.0 for r, s in found.items()}
    top = max(acc.values())
    ok = [r for r in found if acc[r] >= top - tolerance / 100]
    if select == "accurate":
        pick = max(ok, key=lambda r: acc[r])
        return pick, f"the most accurate by {label} ({100 * acc[pick]:.2f}%)"
    if select == "fastest":
        ms = {r: latency(r) for r in ok}
        pick = min(ok, key=lambda r: ms[r])
        what = f"{ms[pick]:.2f} ms (ONNX Runtime, batch 1)"
    else:
        macs = {r: _number(found[r].get("macs")) or float("inf") for r in ok}
        pick = min(ok, key=lambda r: (macs[r], -acc[r]))
        what = f"{macs[pick] / 1e6:.1f}M MACs"
    return pick, (f"the {select} of the {len(ok)} of {len(found)} candidates within {tolerance:g} points of the "
                  f"best {label} ({100 * top:.2f}%): {what} at {100 * acc[pick]:.2f}%")


def best_run(runs: list[str]) -> str:
    """The most accurate run (the old rule, ``--select accurate`` with no tolerance)."""
    return choose_run(runs, "accurate", 0.0)[0]


def _onnx_ms(run: str) -> float:
    ck = load_checkpoint(run)
    return onnx_latency(model_from_checkpoint(ck), checkpoint_image_size(ck), 1)["median_ms"]


def run(cfg: ExportConfig) -> dict:
    """``slimlab export``: a run's model as ONNX (checked against ONNX Runtime) or TorchScript, or the best of
    several candidates (``select``); what was exported and why goes beside it."""
    if not cfg.run:
        raise SlimlabError("export: give the run (a run directory or checkpoint)")
    why = ""
    if cfg.run == "best":
        runs = [c for item in cfg.candidates for c in str(item).split(",") if c]
        src, why = choose_run(runs, cfg.select, cfg.tolerance, latency=_onnx_ms)
    else:
        src = cfg.run
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
    r["input"] = input_contract(ck, size)
    if why:
        r["why"] = why
    record = Path(f"{path}.json")  # what was exported and why, for the report
    if (not record.exists() and not record.is_symlink()) or _is_record(record):
        atomic_write_json(record, {"written_by": "slimlab export", **r})
    else:  # --overwrite names the model file only: a file of the record's name that is not one stays
        print(f"export: {record} exists and was not written by slimlab export: left as it is, the record not written",
              file=sys.stderr)
    return r


def input_contract(ck: dict, size: int) -> dict:
    """What the exported model expects, for whoever deploys it: the input shape, the preprocessing and the class
    names, from the checkpoint's data record."""
    d = ck.get("data") or {}
    out: dict = {"shape": ["batch", 3, size, size], "layout": "NCHW, RGB",
                 "preprocess": "x = (pixels / 255 - mean) / std, per channel"}
    if "mean" in d and "std" in d:
        out.update(mean=d["mean"], std=d["std"])
    if d.get("classes"):
        out["classes"] = d["classes"]
    return out


def _is_record(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("written_by") == "slimlab export"
    except (ValueError, UnicodeDecodeError, AttributeError, OSError):
        return False
