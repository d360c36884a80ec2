"""Weight-sum criterion (Li, Kadav, Durdanovic, Samet & Graf, ICLR 2017, arXiv 1608.08710, Sec. 3.1):
rank the filters of layer i by s_j = sum |W_j| (the L1 norm of filter j) and remove the smallest.
Registered as ``weight_sum``, with ``l1`` as an alias."""

from __future__ import annotations

import torch
import torch.nn as nn

from slimlab.prune.criterion import Criterion, LayerStats, Selection, register_criterion


def weight_sum_scores(conv: nn.Conv2d) -> torch.Tensor:
    """s_j = sum_{c, k1, k2} |W[j, c, k1, k2]| for every output filter j."""
    return conv.weight.detach().abs().flatten(1).sum(1)


def select_by_weight_sum(conv: nn.Conv2d, keep: int) -> torch.Tensor:
    return torch.topk(weight_sum_scores(conv), keep).indices.sort().values


class WeightSum(Criterion):
    name = "weight_sum"

    def select(self, layer, keep: int, stats: LayerStats, generator: torch.Generator) -> Selection:
        return Selection(select_by_weight_sum(layer.conv, keep))

    def scores(self, layer, stats: LayerStats, generator: torch.Generator) -> torch.Tensor:
        return weight_sum_scores(layer.conv)


register_criterion(WeightSum, aliases=("l1",))
