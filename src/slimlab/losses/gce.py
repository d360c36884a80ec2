"""Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018, Eq. 6): L_q = (1 - p_y^q) / q.

q -> 0 recovers CE, q = 1 is MAE (up to a factor); the paper uses q = 0.7.

The truncated loss (Eq. 9, the paper's best on CIFAR): L_trunc = L_q(k) where p_y <= k, else L_q(p_y),
with k = 0.5. A sample the model gives less than k contributes a constant, hence no gradient. The
paper trains with plain L_q for the first 40 of 120 epochs (at initialisation every p_y is about 1/K
< k, so truncating from the start would stop all learning), then truncates through per-sample weights
re-computed every 10 epochs. :class:`TruncatedGCE` does the same from the same fraction of the epochs
(``start``), truncating at every step instead of every 10 epochs: the rule without the lag.
"""

import torch

from slimlab.engine.objective import Objective


def gce_loss(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7, k: float = 0.0) -> torch.Tensor:
    """L_q, truncated at ``k`` when ``k`` > 0 (Eq. 9)."""
    if not 0 < q <= 1 or not 0 <= k < 1:
        raise ValueError(f"GCE needs 0 < q <= 1 and 0 <= k < 1, got q={q}, k={k}")
    p_y = logits.softmax(1).gather(1, target[:, None]).squeeze(1).clamp_min(1e-7)
    loss = (1 - p_y**q) / q
    if k > 0:
        loss = torch.where(p_y > k, loss, torch.full_like(loss, (1 - k**q) / q))
    return loss.mean()


def gce_trunc_loss(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7, k: float = 0.5) -> torch.Tensor:
    """Truncated GCE (Eq. 9) with the paper's k = 0.5."""
    return gce_loss(logits, target, q, k)


class TruncatedGCE(Objective):
    """Truncated GCE (Eq. 9) as an objective: plain L_q before epoch ``start`` (default: 40/120 of the run)."""

    name = "gce_trunc"

    def __init__(self, epochs: int, q: float = 0.7, k: float = 0.5, start: int | None = None):
        super().__init__()
        gce_loss(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), q, k)  # validate q and k now
        self.q, self.k = q, k
        self.start = round(epochs * 40 / 120) if start is None else start

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        return gce_loss(logits, batch["target"], self.q, self.k if epoch >= self.start else 0.0)
