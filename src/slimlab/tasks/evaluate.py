"""``slimlab evaluate``: test accuracy of a checkpoint on a data set's test split (its own by default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from slimlab import data as D
from slimlab.engine import checkpoint_image_size, evaluate, load_checkpoint
from slimlab.engine.distributed import resolve_device
from slimlab.errors import SlimlabError
from slimlab.models.io import model_from_checkpoint
from slimlab.profile import count_macs, count_params
from slimlab.tasks.common import check_same_classes


@dataclass
class EvaluateConfig:
    POSITIONAL = ("checkpoint",)
    RANGES = {"test_subset": ">= 0"}

    checkpoint: str = ""  # a .pt file, a run directory, or zoo:NAME
    data: str = ""  # data set (default: the checkpoint's)
    root: str = "~/.cache/slimlab/data"
    download: bool = False
    device: str = "auto"
    test_subset: int = 0  # only the first N test images (0 = all)


Config = EvaluateConfig


def build_eval_loader(ckpt: dict, data: str | None, root: str, download: bool, batch_size: int = 256,
                      device: torch.device | str = "cpu", subset: int = 0) -> tuple[Any, D.DataSet]:
    """The test loader of the data a checkpoint was trained on (or ``data``), with its normalisation."""
    dmeta = ckpt.get("data") or {}
    spec = data or (ckpt.get("config") or {}).get("data")
    if not spec:
        raise SlimlabError("give --data: the checkpoint does not name its data set")
    ds = D.build(spec, root, download, checkpoint_image_size(ckpt, 0))  # the size the model was trained at
    mean, std = tuple(dmeta.get("mean", ds.mean)), tuple(dmeta.get("std", ds.std))
    idx = torch.arange(min(subset, len(ds.test)) if subset > 0 else len(ds.test))
    return D.BatchLoader(ds.test, idx, batch_size, mean=mean, std=std, device=device), ds


def run(cfg: EvaluateConfig) -> dict:
    """``slimlab evaluate``: a checkpoint's test accuracy and loss (the figure a run or the zoo recorded)."""
    ck = load_checkpoint(cfg.checkpoint)
    dev = resolve_device(cfg.device)
    model = model_from_checkpoint(ck).to(dev)
    loader, ds = build_eval_loader(ck, cfg.data or None, cfg.root, cfg.download, device=dev, subset=cfg.test_subset)
    check_same_classes(cfg.checkpoint, ck, ds)
    r = evaluate(model, loader)
    return {"checkpoint": ck["path"], "model": ck["model_name"], "data": ds.name, "test_acc": r["acc"],
            "test_loss": r["loss"], "n": r["n"], "params": count_params(model),
            "macs": count_macs(model, ds.image_size)}


def evaluate_checkpoint(path: str, data: str | None = None, root: str = "~/.cache/slimlab/data",
                        download: bool = False, device: str = "auto") -> dict:
    """Test accuracy of a checkpoint (the functional form of :func:`run`)."""
    return run(EvaluateConfig(path, data or "", root, download, device))
