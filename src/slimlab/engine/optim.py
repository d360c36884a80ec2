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
    raise SlimlabError(f"unknown schedule '{schedule}' (cosine, step, constant)")
