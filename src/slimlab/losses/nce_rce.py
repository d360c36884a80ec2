"""Active-passive loss NCE+RCE (Ma et al., ICML 2020, Eq. 3 and Sec. 4).

NCE = -log p_y / (-sum_k log p_k) (normalised CE, in [0, 1]); RCE as in SCE.
NCE+RCE = alpha * NCE + beta * RCE; CIFAR-10: alpha = beta = 1. The reference code also clips the
gradient norm at 5: ``--clip-grad-norm 5`` (a training option, as it is a property of the loop).
"""

import torch

from slimlab.losses.reduction import class_labels, reduce
from slimlab.losses.sce import rce_loss


def nce_loss(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Normalised CE: log p_y / sum_k log p_k (Eq. 3); ``target``: class indices [N] of any integer dtype."""
    target = class_labels(logits, target)
    logp = logits.log_softmax(1)
    return reduce(logp.gather(1, target[:, None]).squeeze(1) / logp.sum(1), reduction)


def nce_rce_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 1.0, beta: float = 1.0,
                 reduction: str = "mean") -> torch.Tensor:
    """Active-passive NCE+RCE = alpha * NCE + beta * RCE (Sec. 4; the reference code clips gradients at norm 5)."""
    per = alpha * nce_loss(logits, target, reduction="none") + beta * rce_loss(logits, target, reduction="none")
    return reduce(per, reduction)
