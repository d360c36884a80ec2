"""CIFAR ResNets (He et al., "Deep Residual Learning", CVPR 2016, Sec. 4.2).

Three stages of n basic blocks with 16/32/64 channels (depth 6n+2: ResNet-20/32/56/110), global
average pooling and a linear head. Shortcut option A, as in the paper's CIFAR experiments: the
identity, subsampled and zero-padded in channels where the shape changes, so it has no
parameters (ResNet-20 0.27M, ResNet-56 0.85M, ResNet-110 1.7M params).

The family is a stage table ``(blocks, channels, stride)``; ``width_mult`` and ``depth_mult`` act on
the table, so compound scaling treats it like any other family.
"""

from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from slimlab.models.registry import register_model


class ShortcutA(nn.Module):
    """Option A: stride-2 subsampling and zero channels, no parameters."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.stride, self.extra = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra > 0:
            x = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return x


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU(inplace=True)
        if stride == 1 and cin == cout:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = ShortcutA(cin, cout, stride)
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


def resnet_stages(depth: int, width_mult: float = 1.0, depth_mult: float = 1.0) -> list[tuple[int, int, int]]:
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = math.ceil((depth - 2) // 6 * depth_mult)
    return [(n, max(1, round(c * width_mult)), s) for c, s in ((16, 1), (32, 2), (64, 2))]


class CifarResNet(nn.Module):
    def __init__(self, stages: list[tuple[int, int, int]], num_classes: int = 10, shortcut: str = "A",
                 stem_channels: int | None = None):
        super().__init__()
        c0 = stem_channels or stages[0][1]
        self.conv1 = nn.Conv2d(3, c0, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c0)
        self.relu = nn.ReLU(inplace=True)
        layers, cin = [], c0
        for n, c, s in stages:
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(cin, c, s if i == 0 else 1, shortcut))
                cin = c
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.forward_features(x)), 1))


def cifar_resnet(depth: int, num_classes: int = 10, width_mult: float = 1.0, depth_mult: float = 1.0,
                 shortcut: str = "A") -> CifarResNet:
    """CIFAR ResNet of depth 6n+2 (He et al. 2016), option-A shortcuts by default (``shortcut="B"``: 1x1 conv)."""
    return CifarResNet(resnet_stages(depth, width_mult, depth_mult), num_classes, shortcut)


for _d in (20, 32, 44, 56, 110):
    register_model(f"resnet{_d}", partial(cifar_resnet, _d), family="resnet_cifar",
                   doc=f"CIFAR ResNet-{_d} (He et al. 2016), option-A shortcuts")
