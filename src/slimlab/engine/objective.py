"""The one seam every training method plugs into: the engine calls an :class:`Objective`.

:func:`slimlab.engine.fit` calls exactly these hooks, and every one is declared here with its
default, so a method overrides only what it changes:

- ``num_outputs``: the model's output width when it differs from the data's classes (RotNet: 4).
- ``prepare(batch)``: change a training batch before the forward pass (RotNet: 4 rotations).
- ``prepare_eval(batch)``: the same for evaluation batches (identity unless the task differs).
- ``loss(logits, batch, epoch)``: the scalar to minimise (CE, GCE, PENCIL's staged loss...).
- ``after_step(batch)``: after the optimiser step (PENCIL: update the batch's label variables).
- ``on_epoch_start(epoch)``: stage changes; ``lr_at(epoch)`` may override the learning rate.
- ``wants_train_predictions(epoch)`` / ``on_train_predictions(epoch, probs, index, targets)``: before an epoch
  the objective asks for, the engine predicts every training sample (eval mode, no augmentation) and hands
  over the probabilities, sample indices and given labels (truncated GCE: its per-sample weights).
- ``state_dict()`` / ``load_state_dict()``: per-sample state that travels in the checkpoint.
- ``bind(ctx)``: the engine hands over the process group (``world``, ``dist``) before training.

A plain loss is an objective with only ``loss``. The engine knows nothing about any method; the
methods live in :mod:`slimlab.losses` and :mod:`slimlab.ssl`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class Objective:
    """Base objective: cross-entropy on ``batch["target"]`` (with optional label smoothing)."""

    name = "ce"
    num_outputs: int | None = None  # None: one output per class of the data set

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing
        self.world = 1  # set by the engine under DDP (bind)
        self.dist: Any = None

    def bind(self, ctx: Any) -> None:
        self.world, self.dist = ctx.world, ctx

    def prepare(self, batch: dict) -> dict:
        return batch

    def prepare_eval(self, batch: dict) -> dict:
        return batch

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        return F.cross_entropy(logits, batch["target"], label_smoothing=self.label_smoothing)

    def after_step(self, batch: dict) -> None:
        pass

    def on_epoch_start(self, epoch: int) -> None:
        pass

    def wants_train_predictions(self, epoch: int) -> bool:
        return False

    def on_train_predictions(self, epoch: int, probs: torch.Tensor, index: torch.Tensor,
                             targets: torch.Tensor) -> None:
        pass

    def lr_at(self, epoch: float) -> float | None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def to(self, device: torch.device) -> Objective:
        return self
