"""The model zoo: well-trained checkpoints named ``zoo:NAME`` (``--init zoo:resnet56-cifar10``).

Each entry is a folder ``NAME/`` in ``slimlab/zoo_models/``, inside the package so that an installed wheel
carries it (or under ``$SLIMLAB_ZOO``), holding
``model.pt`` (a slimlab checkpoint), the run's ``config.yaml``, ``metrics.jsonl`` and ``summary.json``.
The entries were trained by slimlab's own recipe (``slimlab run fast_cifar10``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from slimlab.errors import SlimlabError

PREFIX = "zoo:"


def zoo_dir() -> Path:
    return Path(os.environ.get("SLIMLAB_ZOO") or Path(__file__).resolve().parent / "zoo_models")


def entries() -> dict[str, dict]:
    """name -> the entry's summary.json (with its folder as ``dir``), for every complete entry."""
    out = {}
    root = zoo_dir()
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / "model.pt").is_file() and (d / "summary.json").is_file():
                out[d.name] = {**json.loads((d / "summary.json").read_text()), "dir": str(d)}
    return out


def resolve(spec: str) -> str:
    """``zoo:NAME`` -> the path of its checkpoint; any other string is returned as it is."""
    if not spec.startswith(PREFIX):
        return spec
    name = spec[len(PREFIX):]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise SlimlabError(f"'{spec}': a zoo name is a plain name (letters, digits, '_', '-', '.'), not a path")
    path = zoo_dir() / name / "model.pt"
    if not path.is_file():
        known = ", ".join(PREFIX + n for n in entries()) or "none"
        raise SlimlabError(f"unknown zoo model '{spec}' (the zoo has: {known})")
    return str(path)
