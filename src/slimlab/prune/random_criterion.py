"""Random channel selection: the sanity baseline every criterion must clearly beat."""

from __future__ import annotations

import torch


def select_random(num_channels: int, keep: int, generator: torch.Generator | None = None) -> torch.Tensor:
    g = generator or torch.Generator().manual_seed(0)
    return torch.randperm(num_channels, generator=g)[:keep].sort().values
