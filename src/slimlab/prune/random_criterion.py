"""Random channel selection: the sanity baseline every criterion must clearly beat."""

from __future__ import annotations

import torch

from slimlab.prune.criterion import Criterion, LayerStats, Selection, register_criterion


def select_random(num_channels: int, keep: int, generator: torch.Generator | None = None) -> torch.Tensor:
    g = generator or torch.Generator().manual_seed(0)
    return torch.randperm(num_channels, generator=g)[:keep].sort().values


class Random(Criterion):
    name = "random"

    def select(self, layer, keep: int, stats: LayerStats, generator: torch.Generator) -> Selection:
        return Selection(select_random(layer.conv.out_channels, keep, generator))

    def scores(self, layer, stats: LayerStats, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(layer.conv.out_channels, generator=generator)


register_criterion(Random)
