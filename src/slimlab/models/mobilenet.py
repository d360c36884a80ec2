"""MobileNet V1, V2 and V3 from our own layers.

- V1 (Howard et al. 2017, arXiv 1704.04861): a 3x3 stem and 13 depthwise separable blocks; the
  width multiplier alpha scales every layer's channels (Table 6); the resolution multiplier rho is
  the input size you feed. Cost of a block: D_K^2 M D_F^2 + M N D_F^2 multiply-adds (Eq. 5).
- V2 (Sandler et al. 2018, arXiv 1801.04381): inverted residuals with linear bottlenecks (Table 2).
- V3 (Howard et al. 2019, arXiv 1905.02244): V2 blocks with SE and h-swish, Tables 1 and 2.

Channels are rounded to multiples of 8 as the reference code does, so at 1000 classes the V2/V3
parameter counts equal torchvision's to the unit (tested). ``cifar_stem=True`` adapts the models to
32x32 inputs: the stem and the first stride-2 block use stride 1, so the total stride is 8 (not 32)
and the last feature map is 4x4. ``depth_mult`` scales each stage's repeats (ceil), for compound
scaling.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from slimlab.models.layers import ConvBNAct, DepthwiseSeparable, InvertedResidual, SqueezeExcite, make_divisible
from slimlab.models.registry import register_model

# V1: (out channels, stride, repeats)
V1_STAGES = [(64, 1, 1), (128, 2, 1), (128, 1, 1), (256, 2, 1), (256, 1, 1), (512, 2, 1), (512, 1, 5),
             (1024, 2, 1), (1024, 1, 1)]
# V2: (expansion t, out channels c, repeats n, stride s), Table 2
V2_STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
# V3: (kernel, expanded, out, SE, activation, stride), Tables 1 and 2
V3_LARGE = [(3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
            (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
            (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
            (3, 184, 80, False, "HS", 1), (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
            (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1)]
V3_SMALL = [(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
            (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
            (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
            (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]


def _first_s2_to_s1(strides: list[int]) -> list[int]:
    out, done = list(strides), False
    for i, s in enumerate(out):
        if s == 2 and not done:
            out[i], done = 1, True
    return out


class MobileNet(nn.Module):
    """A stem, a sequence of blocks (``features``), a 1x1 head conv (V2/V3), pooling and a classifier."""

    def __init__(self, features: nn.Sequential, classifier: nn.Module):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0, depth_mult: float = 1.0, dropout: float = 0.0,
                 cifar_stem: bool = False) -> MobileNet:
    """MobileNetV1 (Howard et al. 2017); ``width_mult`` is the paper's alpha."""
    rows = [(c, s, math.ceil(n * depth_mult)) for c, s, n in V1_STAGES]
    strides = [2] + [s for _, s, _ in rows]
    if cifar_stem:
        strides = _first_s2_to_s1(_first_s2_to_s1(strides))
    cin = make_divisible(32 * width_mult)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, strides[0])]
    for (c, _, n), s in zip(rows, strides[1:]):
        cout = make_divisible(c * width_mult)
        for i in range(n):
            layers.append(DepthwiseSeparable(cin, cout, s if i == 0 else 1))
            cin = cout
    return MobileNet(nn.Sequential(*layers), nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes)))


def mobilenet_v2(num_classes: int = 1000, width_mult: float = 1.0, depth_mult: float = 1.0, dropout: float = 0.2,
                 cifar_stem: bool = False) -> MobileNet:
    """MobileNetV2 (Sandler et al. 2018), Table 2."""
    strides = [2] + [s for *_, s in V2_STAGES]
    if cifar_stem:
        strides = _first_s2_to_s1(_first_s2_to_s1(strides))
    cin = make_divisible(32 * width_mult)
    last = make_divisible(1280 * max(1.0, width_mult))
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, strides[0], act=nn.ReLU6)]
    for (t, c, n, _), s in zip(V2_STAGES, strides[1:]):
        cout = make_divisible(c * width_mult)
        for i in range(math.ceil(n * depth_mult)):
            layers.append(InvertedResidual(cin, int(round(cin * t)), cout, 3, s if i == 0 else 1, act=nn.ReLU6))
            cin = cout
    layers.append(ConvBNAct(cin, last, 1, act=nn.ReLU6))
    return MobileNet(nn.Sequential(*layers), nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes)))


def _v3_rows(rows: list[tuple], depth_mult: float) -> list[tuple]:
    """Group rows into stages (a stride-2 row starts one) and repeat each stage's last row to ceil(n*d)."""
    stages: list[list[tuple]] = []
    for r in rows:
        if r[5] == 2 or not stages:
            stages.append([r])
        else:
            stages[-1].append(r)
    out: list[tuple] = []
    for st in stages:
        n = max(1, math.ceil(len(st) * depth_mult))
        out += st[:n] + [st[-1][:5] + (1,)] * (n - len(st))
    return out


def _mobilenet_v3(rows: list[tuple], last_channel: int, num_classes: int, width_mult: float, depth_mult: float,
                  dropout: float, cifar_stem: bool, bn_momentum: float = 0.01) -> MobileNet:
    rows = _v3_rows(rows, depth_mult)
    strides = [2] + [r[5] for r in rows]
    if cifar_stem:
        strides = _first_s2_to_s1(_first_s2_to_s1(strides))
    bn = {"bn_eps": 1e-3, "bn_momentum": bn_momentum}
    cin = make_divisible(16 * width_mult)
    layers: list[nn.Module] = [ConvBNAct(3, cin, 3, strides[0], act=nn.Hardswish, **bn)]
    for (k, exp, out, se, act, _), s in zip(rows, strides[1:]):
        cexp, cout = make_divisible(exp * width_mult), make_divisible(out * width_mult)
        block_se = SqueezeExcite(cexp, make_divisible(cexp // 4), nn.ReLU, nn.Hardsigmoid) if se else None
        layers.append(InvertedResidual(cin, cexp, cout, k, s, act=nn.Hardswish if act == "HS" else nn.ReLU,
                                       se=block_se, **bn))
        cin = cout
    head = 6 * cin
    layers.append(ConvBNAct(cin, head, 1, act=nn.Hardswish, **bn))
    last = make_divisible(last_channel * width_mult)
    classifier = nn.Sequential(nn.Linear(head, last), nn.Hardswish(inplace=True), nn.Dropout(dropout),
                               nn.Linear(last, num_classes))
    return MobileNet(nn.Sequential(*layers), classifier)


def mobilenet_v3_large(num_classes: int = 1000, width_mult: float = 1.0, depth_mult: float = 1.0,
                       dropout: float = 0.2, cifar_stem: bool = False, bn_momentum: float = 0.01) -> MobileNet:
    """MobileNetV3-Large (Howard et al. 2019), Table 1.

    BatchNorm momentum 0.01 as in the paper's training (and torchvision): the running statistics move
    1 - 0.99^n of the way in n steps, half-way after 70, so runs of a few hundred steps want ``bn_momentum=0.1``."""
    return _mobilenet_v3(V3_LARGE, 1280, num_classes, width_mult, depth_mult, dropout, cifar_stem, bn_momentum)


def mobilenet_v3_small(num_classes: int = 1000, width_mult: float = 1.0, depth_mult: float = 1.0,
                       dropout: float = 0.2, cifar_stem: bool = False, bn_momentum: float = 0.01) -> MobileNet:
    """MobileNetV3-Small (Howard et al. 2019), Table 2 (``bn_momentum``: see :func:`mobilenet_v3_large`)."""
    return _mobilenet_v3(V3_SMALL, 1024, num_classes, width_mult, depth_mult, dropout, cifar_stem, bn_momentum)


register_model("mobilenet_v1", mobilenet_v1, family="mobilenet", input_size=224,
               doc="MobileNetV1 (Howard et al. 2017); width_mult = alpha")
register_model("mobilenet_v2", mobilenet_v2, family="mobilenet", input_size=224,
               doc="MobileNetV2 (Sandler et al. 2018)")
register_model("mobilenet_v3_large", mobilenet_v3_large, family="mobilenet", input_size=224,
               doc="MobileNetV3-Large (Howard et al. 2019)")
register_model("mobilenet_v3_small", mobilenet_v3_small, family="mobilenet", input_size=224,
               doc="MobileNetV3-Small (Howard et al. 2019)")
