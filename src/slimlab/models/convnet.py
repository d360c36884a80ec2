"""A small plain CNN: three conv stages and a linear head. Fast enough for tests and CPU demos.

``bn=False`` removes batch norm (for exact DDP-equivalence tests, where BN statistics would differ).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from slimlab.models.registry import register_model


class ConvNet(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 32, bn: bool = True, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i, c in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(cin, c, 3, padding=1, bias=not bn)]
            if bn:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU(inplace=True))
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def convnet(num_classes: int = 10, width: int = 32, bn: bool = True, dropout: float = 0.0) -> ConvNet:
    """A small plain CNN (3 conv stages + linear) for tests and quick CPU runs."""
    return ConvNet(num_classes, width, bn, dropout)


register_model("convnet", convnet, family="plain", doc="a small plain CNN for tests and quick CPU runs")
