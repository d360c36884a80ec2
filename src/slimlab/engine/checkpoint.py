"""Safe checkpoint loading (the atomic writers live in :mod:`slimlab.io` and are re-exported here).

Checkpoints
are plain dicts of tensors and metadata, loaded with ``torch.load(weights_only=True)``: a
checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from slimlab import zoo
from slimlab.errors import SlimlabError
from slimlab.io import atomic_save, atomic_write_json, atomic_write_text

__all__ = ["FORMAT", "atomic_save", "atomic_write_json", "atomic_write_text", "checkpoint_image_size",
           "load_checkpoint"]

FORMAT = "slimlab-checkpoint-1"


def load_checkpoint(path: str | Path) -> dict:
    """Load a slimlab checkpoint safely (tensors and plain data only): a file, a run directory, or ``zoo:NAME``."""
    p = Path(zoo.resolve(str(path)))
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


def checkpoint_image_size(ckpt: dict, default: int = 32) -> int:
    """The input size a checkpoint's model was trained at (its data's image size)."""
    return int((ckpt.get("data") or {}).get("image_size") or default)
