"""Objectives made of a plain loss function; the seam itself is :class:`slimlab.engine.objective.Objective`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from slimlab.engine.objective import Objective

__all__ = ["LossObjective", "Objective"]


class LossObjective(Objective):
    """Wrap a function ``fn(logits, targets) -> scalar`` as an objective."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str):
        super().__init__()
        self.fn, self.name = fn, name

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        return self.fn(logits, batch["target"])
