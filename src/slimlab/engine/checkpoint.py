"""Atomic writes and safe checkpoint loading.

Every file is written to a temporary file in the same directory and renamed over the target, so
a run killed at any moment leaves either the old or the new file, never half of one. Checkpoints
are plain dicts of tensors and metadata, loaded with ``torch.load(weights_only=True)``: a
checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from slimlab.errors import SlimlabError

FORMAT = "slimlab-checkpoint-1"


def _atomic(path: str | Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save(obj: Any, path: str | Path) -> None:
    _atomic(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load_checkpoint(path: str | Path) -> dict:
    """Load a slimlab checkpoint safely (tensors and plain data only)."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "last.pt", "model.pt"):
            if (p / name).is_file():
                p = p / name
                break
    if not p.is_file():
        raise SlimlabError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, code-carrying pickles
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in msg:
            msg = "refused: it holds Python objects other than tensors and plain data"
        raise SlimlabError(f"cannot load checkpoint {p}: {msg[:200]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SlimlabError(f"{p} is not a slimlab checkpoint")
    ckpt["path"] = str(p)
    return ckpt
