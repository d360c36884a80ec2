"""Optimisers and learning-rate schedules (per step, a pure function of the step, so resume is exact)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from slimlab.errors import SlimlabError


def build_optimizer(model: nn.Module, name: str, lr: float, momentum: float = 0.9, nesterov: bool = True,
                    weight_decay: float = 5e-4, no_decay_1d: bool = True) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or AdamW. Biases and norm weights get no weight decay."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if (no_decay_1d and p.ndim <= 1) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise SlimlabError(f"unknown optimizer '{name}' (sgd, adamw)")


def lr_at(epoch_float: float, base_lr: float, epochs: int, schedule: str = "cosine",
          milestones: list | None = None, gamma: float = 0.1, warmup_epochs: float = 0.0) -> float:
    """Learning rate at a (fractional) epoch: linear warm-up, then cosine, step or constant.

    Step milestones are epochs, or fractions of ``epochs`` when below 1.
    """
    if warmup_epochs > 0 and epoch_float < warmup_epochs:
        return base_lr * (epoch_float + 1e-8) / warmup_epochs
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        t = (epoch_float - warmup_epochs) / max(1e-8, epochs - warmup_epochs)
        return 0.5 * base_lr * (1 + math.cos(math.pi * min(1.0, max(0.0, t))))
    if schedule == "step":
        ms = [m * epochs if m < 1 else m for m in (milestones or [])]
        return base_lr * gamma ** sum(epoch_float >= m for m in ms)
    if schedule == "pencil":
        return pencil_lr(epoch_float, base_lr, epochs)
    raise SlimlabError(f"unknown schedule '{schedule}' (cosine, step, constant, pencil)")


def pencil_lr(epoch_float: float, lr: float, epochs: int, stage2: int | None = None,
              lr2: float | None = None) -> float:
    """PENCIL's official schedule (Yi & Wu 2019), scaled to ``epochs``: ``lr`` until stage 2 ends (epoch 200 of
    320), then ``lr2`` (default lr·10/3: 0.06 -> 0.2) divided by 10 at each third of stage 3. A schedule of its own
    (``--schedule pencil``), so that CE can train on PENCIL's recipe as its comparator."""
    stage2 = round(epochs * 200 / 320) if stage2 is None else stage2
    lr2 = lr * 10 / 3 if lr2 is None else lr2
    if epoch_float < stage2:
        return lr
    third = max(1e-9, (epochs - stage2) / 3)
    return lr2 / 10 ** min(2, int((epoch_float - stage2) // third))
