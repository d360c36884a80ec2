"""Network-in-Network as used by RotNet (Gidaris et al., ICLR 2018, arXiv 1803.07728).

Blocks of three bias-free convs, each followed by BN and ReLU. Block 1: 5x5 192, 1x1 160, 1x1 96,
then max-pool 3/2; block 2: 5x5 192, 1x1 192, 1x1 192, then avg-pool 3/2; blocks 3+: 3x3 192,
1x1 192, 1x1 192. Global average pooling and a linear head. ``forward_block(x, b)`` returns the
feature map after block ``b`` (1-based) for probing frozen features. ``width_mult`` scales every
layer's channels (1.0 is the paper's; smaller for CPU budgets).
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn

from slimlab.models.layers import ConvBNAct
from slimlab.models.registry import register_model


def nin_block(cin: int, widths: tuple[int, int, int], k: int) -> nn.Sequential:
    return nn.Sequential(ConvBNAct(cin, widths[0], k), ConvBNAct(widths[0], widths[1], 1),
                         ConvBNAct(widths[1], widths[2], 1))


class NIN(nn.Module):
    def __init__(self, num_blocks: int = 4, num_classes: int = 10, width_mult: float = 1.0):
        super().__init__()
        if num_blocks < 3:
            raise ValueError("NIN needs at least 3 blocks")
        w = lambda c: max(8, round(c * width_mult))  # noqa: E731
        c192, c160, c96 = w(192), w(160), w(96)
        blocks = [nn.Sequential(nin_block(3, (c192, c160, c96), 5), nn.MaxPool2d(3, 2, 1)),
                  nn.Sequential(nin_block(c96, (c192, c192, c192), 5), nn.AvgPool2d(3, 2, 1))]
        blocks += [nin_block(c192, (c192, c192, c192), 3) for _ in range(num_blocks - 2)]
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c192, num_classes)

    def forward_block(self, x: torch.Tensor, block: int) -> torch.Tensor:
        for b in self.blocks[:block]:
            x = b(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_block(x, len(self.blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.forward_features(x)), 1))


def nin(num_classes: int = 10, num_blocks: int = 4, width_mult: float = 1.0) -> NIN:
    """RotNet's Network-in-Network with ``num_blocks`` conv blocks (``width_mult`` scales the channels)."""
    return NIN(num_blocks, num_classes, width_mult)


for _b in (3, 4, 5):
    register_model(f"nin{_b}", partial(nin, num_blocks=_b), family="nin",
                   doc=f"Network-in-Network with {_b} blocks (RotNet's trunk)")
