"""Symmetric cross-entropy (Wang et al., ICCV 2019, Eq. 5): alpha * CE + beta * RCE.

RCE = -sum_k p_k log q_k with q the one-hot label; log 0 is clamped as the official code does
(label clamped to [1e-4, 1], prediction to [1e-7, 1]), so RCE = -log(1e-4) * (1 - p_y).
CIFAR-10: alpha = 0.1, beta = 1.0.
"""

import torch
import torch.nn.functional as F

from slimlab.losses.reduction import class_labels, reduce


def rce_loss(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Reverse cross-entropy -sum_k p_k log q_k, the one-hot label q clamped to [1e-4, 1] as in the reference code;
    ``target``: class indices [N] of any integer dtype."""
    q = F.one_hot(class_labels(logits, target), logits.shape[1]).float().clamp(1e-4, 1.0)
    p = logits.softmax(1).clamp(1e-7, 1.0)
    return reduce(-(p * q.log()).sum(1), reduction)


def sce_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.1, beta: float = 1.0,
             reduction: str = "mean") -> torch.Tensor:
    """SCE = alpha * CE + beta * RCE (Eq. 5; the paper's CIFAR-10 values alpha = 0.1, beta = 1.0)."""
    target = class_labels(logits, target)
    ce = F.cross_entropy(logits, target, reduction="none")
    return reduce(alpha * ce + beta * rce_loss(logits, target, reduction="none"), reduction)
