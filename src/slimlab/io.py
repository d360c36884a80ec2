"""Atomic file writes and figure saving: the one place every layer writes files through.

Every file is written to a temporary file in the same directory and renamed over the target, so
a run killed at any moment leaves either the old or the new file, never half of one.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".slimlab-tmp"  # an atomic write's temporary file: .NAME.XXXXXXXX.slimlab-tmp beside NAME


def _temp_beside(path: Path) -> tuple[int, str]:
    """A new temporary file beside ``path``, opened for writing. Created with mode 0666 so the kernel applies the
    umask and the folder's default ACL, as ``open()`` would (mkstemp's private 0600 would make every result
    unreadable to a user's team); a file being replaced passes its own permissions on."""
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        try:
            if path.exists() and hasattr(os, "fchmod"):
                os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        except OSError:
            pass  # the permissions are a courtesy; the write goes on
        return fd, tmp


def _atomic(path: str | Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
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
    """``torch.save`` to ``path`` atomically. The object is serialised in memory first and written with plain
    file writes, so a full disk raises the operating system's own error (ENOSPC), not torch's wrapped one."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    _atomic(path, lambda f: f.write(buf.getbuffer()))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    _atomic(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):  # tensors and numpy arrays
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def pyplot():
    """matplotlib's pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    # every text slimlab plots is plain (run, class and layer names): '$' must not start mathtext, which fails on
    # names such as 'a$b' when the figure is saved
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (the figure is closed)."""
    import io as _io

    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    return buf.getvalue()


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG atomically and close it."""
    atomic_write_bytes(path, figure_png(fig, dpi))
    return Path(path)


def read_jsonl(path: str | Path) -> list[dict]:
    """The records of a JSON-lines file; a torn or malformed line (a write cut short) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
