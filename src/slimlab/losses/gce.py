"""Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018, Eq. 6): L_q = (1 - p_y^q) / q.

q -> 0 recovers CE, q = 1 is MAE (up to a factor); the paper uses q = 0.7.
"""

import torch


def gce_loss(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7) -> torch.Tensor:
    p_y = logits.softmax(1).gather(1, target[:, None]).squeeze(1).clamp_min(1e-7)
    return ((1 - p_y**q) / q).mean()
