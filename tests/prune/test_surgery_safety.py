"""Users' own models that torch-pruning does not fully follow: a layer whose surgery would break the model is left
out of the default plan (and named in one line when asked for), a channel permutation between two convs is not
read as a plain chain, and a frozen model or a call inside ``torch.no_grad()`` prunes and stays frozen."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from slimlab.errors import SlimlabError
from slimlab.prune import prune_module
from slimlab.prune.graph import build_graph, find_prunable


class WSConv2d(nn.Conv2d):
    """A conv subclass with a per-output-channel gain torch-pruning does not know (NFNet style)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, padding=1)
        self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.weight * self.gain, self.bias, self.stride, self.padding)


class Chain(nn.Module):
    """conv -> [between] -> conv -> conv -> head; ``between`` acts on the first conv's output."""

    def __init__(self, between=None, gain: bool = False, pos: bool = False):
        super().__init__()
        conv = WSConv2d if gain else (lambda a, b: nn.Conv2d(a, b, 3, padding=1))
        self.c1, self.c2 = conv(3, 16), nn.Conv2d(16, 16, 3, padding=1)
        self.c3 = nn.Conv2d(16, 16, 3, padding=1)
        self.pos = nn.Parameter(torch.randn(1, 16, 16, 16)) if pos else None  # for 16x16 inputs
        self.between = between or (lambda t: t)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = self.between(x + self.pos if self.pos is not None else x)
        x = F.relu(self.c3(F.relu(self.c2(x))))
        return self.fc(x.mean((2, 3)))


def prunable(model: nn.Module, size: int = 8) -> list[str]:
    return [p.name for p in find_prunable(model, build_graph(model, size))]


@pytest.mark.parametrize("between", [lambda t: torch.flip(t, [1]), lambda t: torch.roll(t, 3, 1),
                                     lambda t: t[:, torch.arange(15, -1, -1)], lambda t: t.softmax(1)],
                         ids=["flip", "roll", "index", "softmax"])
def test_a_permutation_or_mix_of_channels_is_not_a_plain_chain(between):
    torch.manual_seed(0)
    assert prunable(Chain()) == ["c1", "c2"]
    assert prunable(Chain(between)) == ["c2"]  # c1's channel i is not c2's input i


def test_channel_wise_operations_keep_the_chain():
    for between in (lambda t: t * torch.sigmoid(t.mean((2, 3), keepdim=True)), F.hardswish,
                    lambda t: F.max_pool2d(F.interpolate(t, scale_factor=2), 2), lambda t: F.dropout(t, 0.1)):
        assert prunable(Chain(between)) == ["c1", "c2"]


def test_a_layer_whose_surgery_breaks_the_model_is_left_out_and_the_model_still_runs():
    """torch-pruning trims a conv subclass's weight but not its gain, and a learned map added to an activation
    along its last dimension: removing c1's channels would break both models."""
    torch.manual_seed(0)
    for model, size in ((Chain(gain=True), 8), (Chain(pos=True), 16)):
        x = torch.randn(8, 3, size, size)
        assert prunable(model, size) == ["c2"]
        with pytest.raises(SlimlabError, match="removing channels of c1 breaks the model"):
            find_prunable(model, build_graph(model, size), names=["c1"])
        before = copy.deepcopy(model)
        _, report = prune_module(model, x, method="l1", keep_ratio=0.5)
        assert list(report.channels) == ["c2"] and report.channels["c2"] == [16, 8]
        assert model(x).shape == (8, 4)
        assert model.c1.weight.shape == before.c1.weight.shape
    with pytest.raises(SlimlabError, match="Chain cannot run on a 8x8 image"):  # the model's own error, not TP's
        build_graph(Chain(pos=True), 8)


def test_a_frozen_model_and_a_call_under_no_grad_prune_and_stay_frozen():
    def net():
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))

    x = torch.randn(8, 3, 8, 8)
    frozen = net().requires_grad_(False)
    prune_module(frozen, x, method="l1", keep_ratio=0.5)
    assert frozen[0].weight.shape[0] == 8 and not any(q.requires_grad for q in frozen.parameters())
    part = net()
    part[0].requires_grad_(False)
    with torch.no_grad():
        prune_module(part, x, method="thinet", keep_ratio=0.5)
    assert part[0].weight.shape[0] == 8 and not part[0].weight.requires_grad and part[3].weight.requires_grad
    assert part.training


def test_a_model_torch_pruning_cannot_trace_is_one_line_and_keeps_its_mode():
    class NoTensor(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return {"logits": None, "features": self.c(x)}.items()

    model = NoTensor().train()
    with pytest.raises(SlimlabError, match="torch-pruning cannot trace NoTensor"):
        build_graph(model, 8)
    assert model.training


def test_a_model_returning_a_tuple_or_dict_still_prunes():
    """The surgery check compares every output tensor's shape: a (logits, features) or {"logits": ...} output
    used to count as a broken model, and every layer was dropped."""
    class Pair(Chain):
        def forward(self, x):
            return super().forward(x), {"logits": super().forward(x)}

    torch.manual_seed(0)
    assert prunable(Pair()) == ["c1", "c2"]


def test_spatial_padding_is_channel_wise():
    """timm's tf_* models pad before a strided depthwise conv ("same" padding): the chain stays plain."""
    assert prunable(Chain(lambda t: F.pad(t, (1, 1, 1, 1)))) == ["c1", "c2"]
