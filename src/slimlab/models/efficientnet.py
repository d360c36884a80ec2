"""EfficientNet B0-B7 (Tan & Le, ICML 2019, arXiv 1905.11946) from our own MBConv block.

B0 is Table 1's stage table of MBConv blocks (expansion, kernel, stride, channels, repeats), with SE
(squeeze = block input / 4) and SiLU, and stochastic depth rising linearly to ``drop_path`` over the
blocks. Bn = B0 scaled by the released (width, depth, resolution, dropout) coefficients in
:data:`EFFICIENTNET`: channels ``make_divisible(c * width, 8)``, repeats
``ceil(n * depth)``. Parameter counts equal torchvision's to the unit (tested).
``cifar_stem=True``: stem and the first stride-2 stage use stride 1 (total stride 8, for 32x32).

As the TF reference builds it: BatchNorm with epsilon 1e-3 and momentum 0.01 (TF's decay 0.99;
``bn_eps=1e-5, bn_momentum=0.1`` gives PyTorch's defaults, which short runs may prefer: the running
statistics move half-way in 70 steps at 0.01), and a head conv of ``round_filters(1280 * width)``
channels, not 4x the last stage (they differ at widths never released: 1552 vs 1536 at w = 1.21).
"""

from __future__ import annotations

import math

import torch.nn as nn

from slimlab.models.layers import ConvBNAct, InvertedResidual, SqueezeExcite, make_divisible
from slimlab.models.mobilenet import MobileNet, _first_s2_to_s1
from slimlab.models.registry import register_model

# name: (width, depth, resolution, dropout), as released (and as torchvision builds them). The released
# B1-B7 coefficients are *not* exact powers of the paper's alpha=1.2, beta=1.1, gamma=1.15: the authors
# rounded them by hand (B7: width 2.0 vs 1.1^7 = 1.95, depth 3.1 vs 1.2^7 = 3.58, resolution 600 vs 596).
EFFICIENTNET: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}

# (expansion, kernel, stride, in channels, out channels, repeats): Table 1 of the paper
B0_STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
             (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


def efficientnet(num_classes: int = 1000, width_mult: float = 1.0, depth_mult: float = 1.0, dropout: float = 0.2,
                 drop_path: float = 0.2, cifar_stem: bool = False, bn_eps: float = 1e-3,
                 bn_momentum: float = 0.01) -> MobileNet:
    """EfficientNet with B0's stage table scaled by ``width_mult`` and ``depth_mult``."""
    bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
    strides = [2] + [r[2] for r in B0_STAGES]
    if cifar_stem:
        strides = _first_s2_to_s1(_first_s2_to_s1(strides))
    stages = [(e, k, make_divisible(ci * width_mult), make_divisible(co * width_mult), math.ceil(n * depth_mult))
              for e, k, _, ci, co, n in B0_STAGES]
    total = sum(r[4] for r in stages)
    cin = stages[0][2]
    layers: list = [ConvBNAct(3, cin, 3, strides[0], act=nn.SiLU, **bn)]
    block_id = 0
    for (e, k, _, co, n), s in zip(stages, strides[1:]):
        for i in range(n):
            cexp = make_divisible(cin * e)
            se = SqueezeExcite(cexp, max(1, cin // 4), nn.SiLU, nn.Sigmoid)
            layers.append(InvertedResidual(cin, cexp, co, k, s if i == 0 else 1, act=nn.SiLU, se=se,
                                           drop_path=drop_path * block_id / total, **bn))
            cin, block_id = co, block_id + 1
    head = make_divisible(1280 * width_mult)  # round_filters(1280), as the reference
    layers.append(ConvBNAct(cin, head, 1, act=nn.SiLU, **bn))
    return MobileNet(nn.Sequential(*layers), nn.Sequential(nn.Dropout(dropout), nn.Linear(head, num_classes)))


for _name, (_w, _dm, _res, _drop) in EFFICIENTNET.items():
    register_model(_name, efficientnet, family="efficientnet", input_size=_res, width_mult=_w, depth_mult=_dm,
                   dropout=_drop, doc=f"EfficientNet-{_name[-2:].upper()} (Tan & Le 2019): w={_w} d={_dm} r={_res}")
