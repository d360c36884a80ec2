"""Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018, Eq. 6): L_q = (1 - p_y^q) / q.

q -> 0 recovers CE, q = 1 is MAE (up to a factor); the paper uses q = 0.7.

The truncated loss (Eq. 9, the paper's best on CIFAR): L_trunc = L_q(k) where p_y <= k, else L_q(p_y),
with k = 0.5. The paper optimises it (Eq. 11) as

    min over theta and w in {0,1}^N of  sum_i w_i L_q(f(x_i)_y_i) + (1 - w_i) L_q(k)

alternately: plain L_q (every w_i = 1) for the first 40 of 120 epochs (at initialisation every p_y is about
1/K < k, so truncating from the start would stop all learning), then w_i = [p_y(x_i) > k] recomputed every
10 epochs from the model in eval mode on the unaugmented training set, theta trained with w fixed in
between. :class:`TruncatedGCE` does exactly that, with 40 and 10 scaled to the run's epochs; a pruned
sample contributes the constant L_q(k), hence no gradient. ``gce_trunc_loss`` is the per-step variant
(the weight from the batch's own training-mode probability), kept as a plain loss function.
"""

import warnings

import torch

from slimlab.engine.objective import Objective
from slimlab.losses.reduction import class_labels, reduce


def lq_per_sample(logits: torch.Tensor, target: torch.Tensor, q: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_q of every sample, its p_y)."""
    target = class_labels(logits, target)
    p_y = logits.softmax(1).gather(1, target[:, None]).squeeze(1).clamp_min(1e-7)
    return (1 - p_y**q) / q, p_y


def _check(q: float, k: float) -> None:
    if not 0 < q <= 1 or not 0 <= k < 1:
        raise ValueError(f"GCE needs 0 < q <= 1 and 0 <= k < 1, got q={q}, k={k}")


def gce_loss(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7, k: float = 0.0,
             reduction: str = "mean") -> torch.Tensor:
    """L_q, truncated at ``k`` when ``k`` > 0 (Eq. 9)."""
    _check(q, k)
    loss, p_y = lq_per_sample(logits, target, q)
    if k > 0:
        kept = p_y > k
        # checked on CPU only: on a GPU reading the flag would wait for the device at every step
        if len(p_y) and p_y.device.type == "cpu" and not bool(kept.any()):
            warnings.warn(f"truncated GCE: every p_y in this batch is <= k = {k}, so the loss is the constant L_q(k) "
                          "and has no gradient (an untrained model's p_y is about 1/K): train with plain GCE first, "
                          "as the paper does for 40 of 120 epochs, or use TruncatedGCE", stacklevel=2)
        loss = torch.where(kept, loss, torch.full_like(loss, (1 - k**q) / q))
    return reduce(loss, reduction)


def gce_trunc_loss(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7, k: float = 0.5,
                   reduction: str = "mean") -> torch.Tensor:
    """Truncated GCE (Eq. 9) with the paper's k = 0.5, each sample judged by this batch's own p_y. Not a loss to
    start from: at initialisation every p_y is about 1/K < k, every sample gets the constant L_q(k) and nothing
    learns (a warning says so). Warm up with :func:`gce_loss` first, or use :class:`TruncatedGCE`, the paper's
    alternating scheme (plain L_q for the first third of training, then 0/1 weights from the eval model)."""
    return gce_loss(logits, target, q, k, reduction)


class TruncatedGCE(Objective):
    """Truncated GCE as the paper optimises it (see the module's docstring): per-sample 0/1 weights from the eval
    model, recomputed every ``every`` epochs from epoch ``start`` (default 40/120 and 10/120 of the run)."""

    name = "gce_trunc"

    def __init__(self, epochs: int, q: float = 0.7, k: float = 0.5, start: int | None = None,
                 every: int | None = None):
        super().__init__()
        _check(q, k)
        self.q, self.k = q, k
        # at least one epoch of plain L_q: weights from an untrained model (every p_y ~ 1/K < k) would all be 0
        self.start = max(1, round(epochs * 40 / 120)) if start is None else start
        self.every = max(1, round(epochs * 10 / 120)) if every is None else every
        if self.start < 0 or self.every < 1:
            raise ValueError(f"truncated GCE needs start >= 0 and every >= 1, got {self.start} and {self.every}")
        self.weights = torch.ones(0)  # [N] 0/1 by training-sample index; empty: not truncating yet
        self._checked = True  # whether the weights since their last recomputation were checked for all-zero
        self._told_no_weights = False

    def wants_train_predictions(self, epoch: int) -> bool:
        return epoch >= self.start and (epoch - self.start) % self.every == 0

    def on_train_predictions(self, epoch: int, probs: torch.Tensor, index: torch.Tensor,
                             targets: torch.Tensor) -> None:
        if len(self.weights) <= int(index.max()):
            self.weights = torch.ones(int(index.max()) + 1, device=self.weights.device)
        p_y = probs.gather(1, targets.long().to(probs.device)[:, None]).squeeze(1)
        self.weights[index.to(self.weights.device)] = (p_y > self.k).float().to(self.weights.device)
        self._checked = False

    def _warn_if_all_pruned(self, epoch: int) -> None:
        if not self._checked:
            self._checked = True
            if len(self.weights) and not bool(self.weights.any()):
                warnings.warn(f"truncated GCE at epoch {epoch}: every training sample's p_y is <= k = {self.k}, so "
                              "all are pruned and the model stops learning; start truncating later (start=...)",
                              stacklevel=3)

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        lq, _ = lq_per_sample(logits, batch["target"], self.q)
        if len(self.weights) == 0:
            if epoch >= self.start and not self._told_no_weights:
                self._told_no_weights = True
                warnings.warn(f"TruncatedGCE at epoch {epoch} (truncating from epoch {self.start}) has no weights, so "
                              "it is plain GCE: in your own loop, when wants_train_predictions(epoch), call "
                              "on_train_predictions(epoch, probs, index, targets) with the eval model's "
                              "probabilities on the unaugmented training set (slimlab's trainer does)", stacklevel=2)
            return lq.mean()
        self._warn_if_all_pruned(epoch)
        w = self.weights[batch["index"].to(self.weights.device)].to(lq.device)
        return (w * lq + (1 - w) * (1 - self.k**self.q) / self.q).mean()

    def state_dict(self) -> dict:
        return {"weights": self.weights.cpu()}

    def load_state_dict(self, state: dict) -> None:
        w = state.get("weights")
        if w is not None:
            self.weights = w.float().to(self.weights.device)

    def to(self, device: torch.device) -> "TruncatedGCE":
        self.weights = self.weights.to(device)
        return self
