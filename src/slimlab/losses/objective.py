"""The one seam every method plugs into (DESIGN.md): the engine calls an :class:`Objective`.

- ``prepare(batch)``: change the batch before the forward pass (RotNet: 4 rotations).
- ``loss(logits, batch, epoch)``: the scalar to minimise (CE, GCE, PENCIL's staged loss...).
- ``after_step(batch)``: after the optimiser step (PENCIL: update the batch's label variables).
- ``on_epoch_start(epoch)``: stage changes; ``lr_at(epoch)`` may override the learning rate.
- ``state_dict()`` / ``load_state_dict()``: per-sample state that travels in the checkpoint.

A plain loss is an objective with only ``loss``. The engine knows nothing about any method.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


class Objective:
    """Base objective: cross-entropy on ``batch["target"]`` (with optional label smoothing)."""

    name = "ce"

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing
        self.world = 1  # set by the engine under DDP
        self.dist = None

    def prepare(self, batch: dict) -> dict:
        return batch

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        return F.cross_entropy(logits, batch["target"], label_smoothing=self.label_smoothing)

    def after_step(self, batch: dict) -> None:
        pass

    def on_epoch_start(self, epoch: int) -> None:
        pass

    def lr_at(self, epoch: float) -> float | None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def to(self, device: torch.device) -> Objective:
        return self


class LossObjective(Objective):
    """Wrap a function ``fn(logits, targets) -> scalar`` as an objective."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], name: str):
        super().__init__()
        self.fn, self.name = fn, name

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        return self.fn(logits, batch["target"])
