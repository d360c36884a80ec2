"""``slimlab models``: the model registry with parameters and multiply-adds (from a table shipped with the
package for the registered models at their own input size; measured for anything else)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from slimlab import zoo
from slimlab.errors import SlimlabError
from slimlab.models import create_model, get_entry, list_models
from slimlab.profile import count_macs, count_params


@dataclass
class ModelsConfig:
    RANGES = {"input_size": "0 or [8, 4096]", "num_classes": "[0, 100000]"}

    family: str = ""  # only this family
    input_size: int = 0  # count MACs at this input size (default: each model's)
    num_classes: int = 0  # default: 10 for 32x32 models, 1000 for the others


Config = ModelsConfig


TABLE = Path(__file__).resolve().parents[1] / "models" / "profile_table.json"


def _key(name: str, size: int, classes: int) -> str:
    return f"{name}@{size}@{classes}"


def measure(name: str, size: int, classes: int) -> dict:
    m = create_model(name, classes)
    return {"params": count_params(m), "macs": count_macs(m, size)}


def build_table() -> dict:
    """Params and MACs of every registered model at its own input size (what ``slimlab models`` shows);
    ``tests/tasks/test_models_table.py`` recomputes it, so a stale table fails the tests."""
    out = {}
    for name in list_models():
        e = get_entry(name)
        classes = 10 if e.input_size == 32 else 1000
        out[_key(name, e.input_size, classes)] = measure(name, e.input_size, classes)
    return out


def run(cfg: ModelsConfig) -> dict:
    """``slimlab models``: the registry with parameters, MACs and (for the zoo) accuracies."""
    table = json.loads(TABLE.read_text()) if TABLE.is_file() else {}
    rows = []
    families = sorted({get_entry(n).family for n in list_models()})
    if cfg.family and cfg.family not in families:
        raise SlimlabError(f"--family {cfg.family}: the families are {', '.join(families)}")
    for name in list_models(cfg.family or None):
        e = get_entry(name)
        size = cfg.input_size or e.input_size
        classes = cfg.num_classes or (10 if e.input_size == 32 else 1000)
        known = table.get(_key(name, size, classes)) or measure(name, size, classes)
        rows.append({"name": name, "family": e.family, **known, "input_size": size, "doc": e.doc})
    zoo_rows = [{"name": zoo.PREFIX + n, "model": e.get("model"), "data": e.get("data_name") or e.get("data"),
                 "test_acc": e.get("test_acc"), "epochs": e.get("epochs"), "train_hours": e.get("train_hours")}
                for n, e in zoo.entries().items()]
    return {"models": rows, "zoo": zoo_rows}
