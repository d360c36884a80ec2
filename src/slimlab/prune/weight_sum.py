"""Weight-sum criterion (Li, Kadav, Durdanovic, Samet & Graf, ICLR 2017, arXiv 1608.08710, Sec. 3.1):
rank the filters of layer i by s_j = sum |W_j| (the L1 norm of filter j) and remove the smallest."""

from __future__ import annotations

import torch
import torch.nn as nn


def weight_sum_scores(conv: nn.Conv2d) -> torch.Tensor:
    """s_j = sum_{c, k1, k2} |W[j, c, k1, k2]| for every output filter j."""
    return conv.weight.detach().abs().flatten(1).sum(1)


def select_by_weight_sum(conv: nn.Conv2d, keep: int) -> torch.Tensor:
    return torch.topk(weight_sum_scores(conv), keep).indices.sort().values
