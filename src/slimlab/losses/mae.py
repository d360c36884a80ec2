"""Mean absolute error (Ghosh et al., AAAI 2017), symmetric hence noise-tolerant.

The Active-Passive Loss reference code (Ma et al., 2020), whose CIFAR numbers the robust-loss
benchmarks compare with, defines MAE = scale * (1 - p_y) with scale 1. Ghosh et al.'s
||p - e_y||_1 = 2 (1 - p_y) is ``scale=2``: the same loss at twice the effective learning rate.
"""

import torch

from slimlab.losses.reduction import class_labels, reduce


def mae_loss(logits: torch.Tensor, target: torch.Tensor, scale: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """scale * (1 - p_y): the Active-Passive code's MAE (scale 2 is Ghosh et al.'s L1 between p and the one-hot)."""
    target = class_labels(logits, target)
    p_y = logits.softmax(1).gather(1, target[:, None]).squeeze(1)
    return reduce(scale * (1 - p_y), reduction)
