"""Evaluation of frozen features (RotNet, Sec. 4.1): a classifier trained on one block's feature maps
of a frozen trunk. Heads: ``linear`` (global average pooling + linear), ``mlp`` (the paper's
non-linear classifier: flatten, two hidden layers of 200 units with BN and ReLU, linear), ``conv``
(the paper's conv classifier: a further NIN block of three 192-channel convs, global pooling, linear;
``head_width`` 0 takes the official 192, scaled by the trunk's ``width_mult``).

The trunk stays in eval mode (its BN statistics do not move) and has ``requires_grad=False``: no
gradient reaches it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.models.io import head_keys
from slimlab.models.nin import nin_block
from slimlab.models.registry import create_model, register_model


class Probe(nn.Module):
    def __init__(self, num_classes: int = 10, trunk: str = "nin4", trunk_kwargs: dict | None = None,
                 trunk_classes: int = 4, block: int = 2, head: str = "linear", input_size: int = 32,
                 head_width: int = 0):
        super().__init__()
        self.trunk = create_model(trunk, trunk_classes, **(trunk_kwargs or {}))
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        n = len(self.trunk.blocks) if hasattr(self.trunk, "forward_block") else 0
        if n and not 1 <= block <= n:
            raise SlimlabError(f"block {block}: the trunk {trunk} has blocks 1 to {n}")
        self.block = block
        with torch.no_grad():
            self.trunk.eval()
            c, h, w = self.features(torch.zeros(1, 3, input_size, input_size)).shape[1:]
        if head == "linear":
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
        elif head == "mlp":
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 200, bias=False), nn.BatchNorm1d(200),
                                      nn.ReLU(inplace=True), nn.Linear(200, 200, bias=False), nn.BatchNorm1d(200),
                                      nn.ReLU(inplace=True), nn.Linear(200, num_classes))
        elif head == "conv":  # a further NIN block, 192 channels wide as in the official code
            cw = head_width or max(8, round(192 * float((trunk_kwargs or {}).get("width_mult", 1.0))))
            self.head = nn.Sequential(nin_block(c, (cw, cw, cw), 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(cw, num_classes))
        else:
            raise SlimlabError(f"unknown probe head '{head}' (linear, mlp, conv)")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Block ``block``'s output for NIN trunks; the last feature map for other registry models."""
        if hasattr(self.trunk, "forward_block"):
            return self.trunk.forward_block(x, self.block)
        if hasattr(self.trunk, "forward_features"):
            return self.trunk.forward_features(x)
        raise SlimlabError(f"{type(self.trunk).__name__} exposes no feature maps to probe")

    def train(self, mode: bool = True) -> Probe:
        super().train(mode)
        self.trunk.eval()  # frozen: BN statistics stay those of the pretext training
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.features(x)
        return self.head(f)

    def load_trunk(self, state_dict: dict) -> int:
        """Copy the pretrained trunk; return the number of tensors copied. Every tensor of the trunk but its own
        classifier (the pretext head, which the features do not use) must be in ``state_dict`` with its shape: a
        probe on partly random features would measure nothing."""
        own, skip = self.trunk.state_dict(), head_keys(self.trunk)
        ok = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
        missing = [k for k in own if k not in ok and k not in skip]
        if missing:
            k = missing[0]
            why = f"{tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}" if k in state_dict else "not in the file"
            raise SlimlabError(f"the checkpoint does not fit the trunk: {len(missing)} of its {len(own)} tensors "
                               f"missing or of another shape (first: {k} {why})")
        self.trunk.load_state_dict(ok, strict=False)
        return len(ok)


def probe(num_classes: int = 10, trunk: str = "nin4", trunk_kwargs: dict | None = None, trunk_classes: int = 4,
          block: int = 2, head: str = "linear", input_size: int = 32, head_width: int = 0) -> Probe:
    """A classifier on the frozen features of one block of a (RotNet-pretrained) trunk."""
    return Probe(num_classes, trunk, trunk_kwargs, trunk_classes, block, head, input_size, head_width)


register_model("probe", probe, family="probe", doc="a classifier on one block of a frozen trunk (slimlab probe)")
