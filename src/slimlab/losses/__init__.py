"""Losses and objectives: CE, robust losses for noisy labels, PENCIL, behind one seam."""

from __future__ import annotations

from functools import partial

import torch

from slimlab.errors import SlimlabError
from slimlab.losses.bootstrap import bootstrap_hard_loss, bootstrap_soft_loss
from slimlab.losses.forward import estimate_transition, forward_loss
from slimlab.losses.gce import gce_loss
from slimlab.losses.mae import mae_loss
from slimlab.losses.nce_rce import nce_loss, nce_rce_loss
from slimlab.losses.objective import LossObjective, Objective
from slimlab.losses.pencil import PencilObjective, pencil_lc, pencil_loss
from slimlab.losses.sce import rce_loss, sce_loss

__all__ = ["Objective", "LossObjective", "PencilObjective", "build_objective", "bootstrap_hard_loss",
           "bootstrap_soft_loss", "estimate_transition", "forward_loss", "gce_loss", "mae_loss", "nce_loss",
           "nce_rce_loss", "pencil_lc", "pencil_loss", "rce_loss", "sce_loss", "LOSSES"]

LOSSES = {
    "gce": gce_loss,
    "sce": sce_loss,
    "mae": mae_loss,
    "nce_rce": nce_rce_loss,
    "bootstrap_soft": bootstrap_soft_loss,
    "bootstrap_hard": bootstrap_hard_loss,
}
NAMES = ["ce", *LOSSES, "forward", "pencil", "rotnet"]


def build_objective(name: str, num_classes: int, *, kwargs: dict | None = None, label_smoothing: float = 0.0,
                    targets: torch.Tensor | None = None, epochs: int = 1, lr: float | None = None,
                    transition: torch.Tensor | None = None) -> Objective:
    """An objective by name (``ce``, ``gce``, ``sce``, ``mae``, ``nce_rce``, ``bootstrap_soft``,
    ``bootstrap_hard``, ``forward``, ``pencil``, ``rotnet``) with its keyword options."""
    kw = dict(kwargs or {})
    try:
        if name == "ce":
            if kw:
                raise TypeError(f"unexpected option(s) {', '.join(kw)}")
            return Objective(label_smoothing)
        if name in LOSSES:
            fn = LOSSES[name]
            fn(torch.zeros(1, num_classes), torch.zeros(1, dtype=torch.long), **kw)  # validate options now
            return LossObjective(partial(fn, **kw), name)
        if name == "forward":
            if transition is None:
                raise SlimlabError("--loss forward needs a transition matrix: inject synthetic noise (the given T), "
                                   "or set loss_kwargs.matrix / loss_kwargs.estimate_from")
            return LossObjective(partial(forward_loss, T=torch.as_tensor(transition, dtype=torch.float32)), name)
        if name == "rotnet":
            from slimlab.ssl.rotnet import RotNetObjective

            if kw:
                raise TypeError(f"unexpected option(s) {', '.join(kw)}")
            return RotNetObjective()
        if name == "pencil":
            if targets is None:
                raise SlimlabError("PENCIL needs the training labels")
            kw.setdefault("lr", lr)
            kw.setdefault("lr2", None if lr is None else lr * 10 / 3)  # official: lr 0.06, lr2 0.2
            return PencilObjective(targets, num_classes, epochs, **kw)
    except TypeError as e:
        raise SlimlabError(f"--loss {name}: bad loss_kwargs ({e})") from None
    except ValueError as e:
        raise SlimlabError(f"--loss {name}: {e}") from None
    raise SlimlabError(f"unknown loss '{name}' (choose from {', '.join(NAMES)})")
