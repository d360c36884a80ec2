"""``slimlab models``: the model registry with parameters and multiply-adds."""

from __future__ import annotations

from dataclasses import dataclass

from slimlab import zoo
from slimlab.models import create_model, get_entry, list_models
from slimlab.profile import count_macs, count_params


@dataclass
class ModelsConfig:
    family: str = ""  # only this family
    input_size: int = 0  # count MACs at this input size (default: each model's)
    num_classes: int = 0  # default: 10 for 32x32 models, 1000 for the others


Config = ModelsConfig


def run(cfg: ModelsConfig) -> dict:
    rows = []
    for name in list_models(cfg.family or None):
        e = get_entry(name)
        size = cfg.input_size or e.input_size
        m = create_model(name, cfg.num_classes or (10 if e.input_size == 32 else 1000))
        rows.append({"name": name, "family": e.family, "params": count_params(m), "macs": count_macs(m, size),
                     "input_size": size, "doc": e.doc})
    zoo_rows = [{"name": zoo.PREFIX + n, "model": e.get("model"), "data": e.get("data_name") or e.get("data"),
                 "test_acc": e.get("test_acc"), "epochs": e.get("epochs"), "train_hours": e.get("train_hours")}
                for n, e in zoo.entries().items()]
    return {"models": rows, "zoo": zoo_rows}
