"""The small set of layers every family is built from (timm-style composable blocks)."""

from __future__ import annotations

import torch
import torch.nn as nn


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor``, never dropping more than 10% (as the reference code)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation (``None`` for a linear bottleneck)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU, bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout, eps=bn_eps, momentum=bn_momentum)]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish) else act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): x * gate(fc2(act(fc1(avgpool(x)))))."""

    def __init__(self, channels: int, squeeze: int, act: type[nn.Module] = nn.ReLU,
                 gate: type[nn.Module] = nn.Sigmoid):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = act()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.fc1(s))))


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016), row mode: drop the residual branch per sample."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class DepthwiseSeparable(nn.Sequential):
    """MobileNetV1's block: depthwise 3x3 conv-BN-ReLU, then pointwise 1x1 conv-BN-ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, act: type[nn.Module] = nn.ReLU):
        super().__init__(ConvBNAct(cin, cin, 3, stride, groups=cin, act=act), ConvBNAct(cin, cout, 1, act=act))


class InvertedResidual(nn.Module):
    """Inverted residual with linear bottleneck (MobileNetV2), optionally with SE (V3) and
    stochastic depth (MBConv, EfficientNet): expand 1x1 -> depthwise kxk -> [SE] -> project 1x1.

    The expansion conv is omitted when the expanded width equals the input width, as in the
    reference implementations. A residual is added when stride is 1 and widths match.
    """

    def __init__(self, cin: int, cexp: int, cout: int, k: int = 3, stride: int = 1,
                 act: type[nn.Module] = nn.ReLU6, se: nn.Module | None = None, drop_path: float = 0.0,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if cexp != cin:
            layers.append(ConvBNAct(cin, cexp, 1, act=act, bn_eps=bn_eps, bn_momentum=bn_momentum))
        layers.append(ConvBNAct(cexp, cexp, k, stride, groups=cexp, act=act, bn_eps=bn_eps, bn_momentum=bn_momentum))
        if se is not None:
            layers.append(se)
        layers.append(ConvBNAct(cexp, cout, 1, act=None, bn_eps=bn_eps, bn_momentum=bn_momentum))
        self.block = nn.Sequential(*layers)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_res:
            out = x + self.drop_path(out)
        return out
