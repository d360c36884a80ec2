"""Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018, Eq. 6): L_q = (1 - p_y^q) / q.

q -> 0 recovers CE, q = 1 is MAE (up to a factor); the paper uses q = 0.7.

The truncated loss (Eq. 9, the paper's best on CIFAR): L_trunc = L_q(k) where p_y <= k, else L_q(p_y),
with k = 0.5. A sample the model gives less than k contributes a constant, hence no gradient. The
paper applies the truncation through per-sample weights re-computed every 10 epochs (from epoch 40);
``gce_trunc_loss`` applies it at every step, which is the same rule without the lag.
"""

import torch


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
