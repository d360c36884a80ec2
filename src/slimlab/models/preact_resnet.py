"""Pre-activation ResNet for CIFAR (He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016).

Blocks are BN-ReLU-conv-BN-ReLU-conv with a 1x1 projection shortcut where the shape changes.
PreAct ResNet-32 (3 stages of 5 blocks, 16/32/64 channels) is PENCIL's CIFAR-10 backbone.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F

from slimlab.models.registry import register_model
from slimlab.models.resnet_cifar import resnet_stages


class PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride, bias=False)
                         if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        sc = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + sc


class PreActResNet(nn.Module):
    def __init__(self, stages: list[tuple[int, int, int]], num_classes: int = 10):
        super().__init__()
        cin = stages[0][1]
        self.conv1 = nn.Conv2d(3, cin, 3, 1, 1, bias=False)
        layers = []
        for n, c, s in stages:
            blocks = []
            for i in range(n):
                blocks.append(PreActBlock(cin, c, s if i == 0 else 1))
                cin = c
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return F.relu(self.bn(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.forward_features(x), 1), 1))


def preact_resnet(depth: int, num_classes: int = 10, width_mult: float = 1.0, depth_mult: float = 1.0) -> PreActResNet:
    """Pre-activation CIFAR ResNet of depth 6n+2 (He et al. 2016b)."""
    return PreActResNet(resnet_stages(depth, width_mult, depth_mult), num_classes)


register_model("preact_resnet32", partial(preact_resnet, 32), family="resnet_cifar",
               doc="PreAct ResNet-32 (He et al. 2016b), PENCIL's CIFAR backbone")
