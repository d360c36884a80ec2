"""Bootstrapping (Reed et al., ICLR 2015 workshop, Eqs. 6-7).

soft: L = -sum_k [beta t_k + (1 - beta) q_k] log q_k            (beta = 0.95)
hard: L = -sum_k [beta t_k + (1 - beta) z_k] log q_k, z = onehot(argmax q)   (beta = 0.8)
t is the given (noisy) one-hot label, q the prediction. In the soft form the gradient flows
through q in the target too, as in the paper.
"""

import torch
import torch.nn.functional as F

from slimlab.losses.reduction import class_labels, reduce


def bootstrap_soft_loss(logits: torch.Tensor, target: torch.Tensor, beta: float = 0.95,
                        reduction: str = "mean") -> torch.Tensor:
    """Soft bootstrapping (Eq. 6): -sum_k (beta t_k + (1 - beta) q_k) log q_k, q the prediction (not detached)."""
    t = F.one_hot(class_labels(logits, target), logits.shape[1]).float()
    logq = logits.log_softmax(1)
    return reduce(-((beta * t + (1 - beta) * logq.exp()) * logq).sum(1), reduction)


def bootstrap_hard_loss(logits: torch.Tensor, target: torch.Tensor, beta: float = 0.8,
                        reduction: str = "mean") -> torch.Tensor:
    """Hard bootstrapping (Eq. 7): -sum_k (beta t_k + (1 - beta) z_k) log q_k, z the one-hot argmax of q."""
    t = F.one_hot(class_labels(logits, target), logits.shape[1]).float()
    logq, k = logits.log_softmax(1), logits.shape[1]
    z = F.one_hot(logits.detach().argmax(1), k).float()
    return reduce(-((beta * t + (1 - beta) * z) * logq).sum(1), reduction)
