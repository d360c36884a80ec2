"""Safe checkpoint loading (the atomic writers live in :mod:`slimlab.io` and are re-exported here).

Checkpoints
are plain dicts of tensors and metadata, loaded with ``torch.load(weights_only=True)``: a
checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch

from slimlab import zoo
from slimlab.errors import SlimlabError
from slimlab.io import atomic_save, atomic_write_json, atomic_write_text

__all__ = ["FORMAT", "atomic_save", "atomic_write_json", "atomic_write_text", "checkpoint_image_size",
           "load_checkpoint", "read_weights_only"]

FORMAT = "slimlab-checkpoint-1"


def load_checkpoint(path: str | Path) -> dict:
    """Load a slimlab checkpoint safely (tensors and plain data only): a file, a run directory, or ``zoo:NAME``."""
    p, ckpt = read_weights_only(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise SlimlabError(f"{p} is not a slimlab checkpoint")
    check_metadata(ckpt, str(p))
    ckpt["path"] = str(p)
    return ckpt


def read_weights_only(path: str | Path) -> tuple[Path, object]:
    """(the file, its contents) of a torch file loaded with ``weights_only=True``: a file, a run directory
    (its best.pt, last.pt or model.pt) or ``zoo:NAME``; one line for anything that cannot be read so."""
    p = Path(zoo.resolve(str(path)))
    if p.is_dir():
        for name in ("best.pt", "last.pt", "model.pt"):
            if (p / name).is_file():
                p = p / name
                break
    if not p.is_file():
        raise SlimlabError(f"checkpoint not found: {path}")
    if not _looks_like_torch_file(p):
        raise SlimlabError(f"{p} is not a PyTorch checkpoint (a file written by torch.save: a .pt or .pth archive)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return p, torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, truncated files, code-carrying pickles
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in msg:
            msg = "refused: it holds Python objects other than tensors and plain data"
        raise SlimlabError(f"cannot load checkpoint {p}: {msg[:200]}") from None


def _looks_like_torch_file(p: Path) -> bool:
    """A torch.save file: a zip archive of stored entries (the current format) or a pickle stream (the legacy
    one)."""
    import zipfile

    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:  # torch.save stores its entries: a compressed one could inflate without
                return all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())  # bound (a zip bomb)
        except (zipfile.BadZipFile, OSError):
            return False
    with open(p, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5  # PROTO opcode, protocols 2-5


# field -> (type, range) of a checkpoint's metadata; a stranger's file is checked before anything is built from it
_META = {"model_name": (str, None), "model_kwargs": (dict, None), "num_classes": (int, (1, 1_000_000)),
         "epoch": (int, (0, 10_000_000)), "best_epoch": (int, (0, 10_000_000)), "best_val_acc": (float, (-1.0, 1.0)),
         "pruned": (bool, None), "data": (dict, None), "config": (dict, None), "objective": (dict, None),
         "run_id": (str, None), "optimizer": (dict, None), "prune": (dict, None), "init": (dict, None)}
MAX_IMAGE_SIZE = 4096


def check_metadata(ckpt: dict, where: str = "checkpoint") -> None:
    """One :class:`SlimlabError` line for the first malformed field of a loaded checkpoint."""
    sd = ckpt.get("state_dict")
    if not isinstance(sd, dict) or not sd:
        raise SlimlabError(f"{where}: no 'state_dict' (a mapping of tensor names to tensors)")
    bad = next((k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise SlimlabError(f"{where}: state_dict entry {str(bad)[:60]!r} is not a named tensor")
    for key, (tp, rng) in _META.items():
        if key not in ckpt or ckpt[key] is None:
            continue
        v = ckpt[key]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) if tp is float else isinstance(v, tp)
        if tp is int and isinstance(v, bool):
            ok = False
        if not ok:
            raise SlimlabError(f"{where}: '{key}' must be {tp.__name__}, got {type(v).__name__}")
        if rng is not None and not rng[0] <= v <= rng[1]:
            raise SlimlabError(f"{where}: '{key}' = {v!r} is out of range [{rng[0]}, {rng[1]}]")
    _check_data_meta(ckpt.get("data") or {}, where)
    size = (ckpt.get("data") or {}).get("image_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_IMAGE_SIZE):
        raise SlimlabError(f"{where}: data.image_size = {size!r} is not an image size in [1, {MAX_IMAGE_SIZE}]")


def _check_data_meta(data: dict, where: str) -> None:
    """The data record a checkpoint carries: class names are strings, mean and std are 1 or 3 numbers > 0 (std)."""
    classes = data.get("classes")
    if classes is not None and (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)):
        raise SlimlabError(f"{where}: data.classes must be a list of class names")
    for key in ("mean", "std"):
        v = data.get(key)
        if v is None:
            continue
        ok = isinstance(v, list) and len(v) in (1, 3) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
        if not ok or (key == "std" and min(v) <= 0):
            raise SlimlabError(f"{where}: data.{key} must be 1 or 3 finite numbers{' > 0' if key == 'std' else ''}")
    if data.get("name") is not None and not isinstance(data["name"], str):
        raise SlimlabError(f"{where}: data.name must be a string")


def checkpoint_image_size(ckpt: dict, default: int = 32) -> int:
    """The input size a checkpoint's model was trained at (its data's image size)."""
    return int((ckpt.get("data") or {}).get("image_size") or default)
