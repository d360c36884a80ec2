"""VGG-16 with batch norm for 32x32 inputs (Simonyan & Zisserman 2015; the CIFAR variant used by
ThiNet, Li et al. 2017 and DCP): 13 conv-BN-ReLU layers in five blocks, max-pooling after each
block, then a single linear classifier on the 512-d pooled feature (about 14.7M parameters)."""

from __future__ import annotations

import torch
import torch.nn as nn

from slimlab.models.registry import register_model

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, cfg: list, num_classes: int = 10, width_mult: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                c = max(1, round(v * width_mult))
                layers += [nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                cin = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def vgg16_bn(num_classes: int = 10, width_mult: float = 1.0) -> VGG:
    """VGG-16 with BN for 32x32 inputs (13 convs, one linear classifier)."""
    return VGG(VGG16, num_classes, width_mult)


register_model("vgg16", vgg16_bn, family="vgg", doc="VGG-16 with BN for 32x32 inputs")
