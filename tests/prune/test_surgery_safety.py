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


class Gate(nn.Module):
    """A squeeze-and-excitation gate under a class name slimlab has never heard of, of 1x1 convs or of linear
    layers (after a flatten)."""

    def __init__(self, c: int, linear: bool = False):
        super().__init__()
        self.linear = linear
        self.reduce, self.expand = (nn.Linear(c, 4), nn.Linear(4, c)) if linear else (nn.Conv2d(c, 4, 1),
                                                                                        nn.Conv2d(4, c, 1))

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1).flatten(1) if self.linear else x.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.expand(F.relu(self.reduce(s))))
        return x * (s[:, :, None, None] if self.linear else s)


class Gated(nn.Module):
    """conv -> gate -> conv -> [1x1 head conv on pooled features] -> linear."""

    def __init__(self, head: bool = False, linear: bool = False):
        super().__init__()
        self.c1, self.gate, self.c2 = nn.Conv2d(3, 16, 3, padding=1), Gate(16, linear), nn.Conv2d(16, 16, 3, padding=1)
        self.head = nn.Conv2d(16, 32, 1) if head else None
        self.fc = nn.Linear(32 if head else 16, 4)

    def forward(self, x):
        x = F.relu(self.c2(self.gate(F.relu(self.c1(x)))))
        x = x.mean((2, 3), keepdim=True)
        return self.fc((F.relu(self.head(x)) if self.head is not None else x).flatten(1))


@pytest.mark.parametrize("linear", [False, True], ids=["conv-gate", "linear-gate"])
def test_an_attention_gate_under_any_class_name_is_not_a_layer_nor_a_consumer(linear):
    """Before, only known SE class names were recognised: a user's own gate's convs were pruned as ThiNet layers,
    a gate of linear layers tied its conv to them (nothing pruned), and timm's selective-kernel and split-attention
    gates were the only layers of skresnet and resnest."""
    torch.manual_seed(0)
    m = Gated(linear=linear).eval()
    plan = find_prunable(m, build_graph(m, 8))
    assert [(p.name, p.consumer_name) for p in plan] == [("c1", "c2")]  # not gate.reduce, and c2 is c1's reader
    if not linear:
        with pytest.raises(SlimlabError, match="gate.reduce cannot be pruned on its own: reading a pooled summary"):
            find_prunable(m, build_graph(m, 8), ["gate.reduce"])
    x = torch.randn(4, 3, 8, 8)
    pruned, report = prune_module(copy.deepcopy(m), x, method="thinet", keep_ratio=0.5)
    expand = pruned.gate.expand
    assert report.channels == {"c1": [16, 8]} and (expand.out_features if linear else expand.out_channels) == 8
    assert pruned(x).shape == (4, 4)


def test_a_head_conv_on_pooled_features_is_the_last_layers_consumer():
    """A 1x1 conv on globally pooled features (timm's conv_head in MobileNetV3 and LCNet) reads the last conv's
    channels one to one: that conv is prunable, with the head conv as its layer i+1."""
    m = Gated(head=True).eval()
    plan = {p.name: p.consumer_name for p in find_prunable(m, build_graph(m, 8))}
    assert plan == {"c1": "c2", "c2": "head"}


def test_no_prunable_layer_says_why_each_conv_was_left_out():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.a, self.b = (nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                                         nn.Conv2d(8, 8, 3, padding=1))

        def forward(self, x):
            x = self.stem(x)
            x = x + self.a(x)
            return (x + self.b(x)).mean((2, 3))

    with pytest.raises(SlimlabError, match=r"^no prunable layer found in Residual: of its 3 dense convolutions: 3 tied "
                                           r"to a residual sum, a linear layer, or several consumers, such as stem$"):
        prune_module(Residual().eval(), torch.randn(4, 3, 8, 8), method="l1", keep_ratio=0.5)


def test_timms_vgg_keeps_its_last_block_and_fc_convs_as_torchvisions_does():
    """ThiNet prunes VGG's conv1_1 .. conv4_3; timm's VGG (with its FC layers as convs in pre_logits) got its last
    block and pre_logits.fc1 pruned too (a 4096-channel ThiNet layer: minutes on a CPU)."""
    timm = pytest.importorskip("timm")
    import torchvision

    ours = timm.create_model("vgg11", pretrained=False, num_classes=10).eval()
    theirs = torchvision.models.vgg11(num_classes=10).eval()
    assert prunable(ours, 32) == prunable(theirs, 32) == ["features.0", "features.3", "features.6", "features.8",
                                                          "features.11", "features.13"]


def test_no_pruning_group_is_built_for_a_conv_the_graph_already_rules_out(monkeypatch):
    """torch-pruning maps indices through every reshape a group reaches: for timm's EfficientViT-M0 at 224 px one
    residual-tied attention projection's group ran for minutes and gigabytes. A conv whose output is summed with
    another layer's, or read through a reshape, is now ruled out from the graph alone, before any group."""
    import torch_pruning as tp

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.a, self.b = (nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                                         nn.Conv2d(8, 8, 3, padding=1))
            self.c, self.d = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)

        def forward(self, x):
            x = self.stem(x)
            x = x + self.a(x)  # stem and a: tied by the sum
            y = self.b(x).view(x.shape[0], 2, 4, *x.shape[2:]).transpose(1, 2).flatten(1, 2)  # b: a shuffle
            return self.d(F.relu(self.c(y))).mean((2, 3))  # c: a plain chain into d

    asked = []
    real = tp.DependencyGraph.get_pruning_group
    monkeypatch.setattr(tp.DependencyGraph, "get_pruning_group",
                        lambda dg, m, *a, **k: asked.append(m) or real(dg, m, *a, **k))
    m = Mixed().eval()
    dg = build_graph(m, 8)
    asked.clear()
    assert [p.name for p in find_prunable(m, dg, check=False)] == ["c"]
    assert asked == [m.c, m.d]  # not stem, a or b (d: nothing reads it but the output, which takes its group)
    with pytest.raises(SlimlabError, match="a cannot be pruned on its own: tied to a residual sum"):
        find_prunable(m, dg, ["a"])
    with pytest.raises(SlimlabError, match="b cannot be pruned on its own: not read one to one"):
        find_prunable(m, dg, ["b"])


def cbr(a: int, b: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU())


class SharedMLP(nn.Module):
    """CBAM's channel attention: one MLP on an average- and a max-pooled copy, summed."""

    def __init__(self, c: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(c, 4, 1), nn.ReLU(), nn.Conv2d(4, c, 1))

    def forward(self, x):
        return x * torch.sigmoid(self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1)))


class Heads(nn.Module):
    """c1 -> [gate] -> c2 -> pooled: a 1x1 head conv, and optionally a second reader of c2's channels."""

    def __init__(self, gate: bool, second: str = ""):
        super().__init__()
        self.c1, self.c2 = cbr(3, 16), cbr(16, 16)
        self.gate = SharedMLP(16) if gate else nn.Identity()
        self.head, self.fc = nn.Conv2d(16, 32, 1), nn.Linear(32, 4)
        self.second = second
        self.other = nn.Conv2d(16, 4, 1) if second == "conv" else nn.Linear(16, 4)

    def forward(self, x):
        x = self.c2(self.gate(self.c1(x)))
        p = x.mean((2, 3), keepdim=True)
        out = self.fc(F.relu(self.head(p)).flatten(1))
        if self.second == "conv":  # LR-ASPP: a full-resolution conv reads the channels beside the pooled branch
            out = out + self.other(x).mean((2, 3))
        elif self.second == "linear":  # an auxiliary classifier on the pooled channels
            out = out + self.other(p.flatten(1))
        return out


@pytest.mark.parametrize("gate", [False, True], ids=["no-gate", "cbam-gate"])
def test_pooled_readers_a_head_conv_consumes_a_second_reader_ties_and_a_shared_mlp_gate_is_a_gate(gate):
    """Found by a review of the first version: with a gate, the head conv stopped being the last layer's consumer;
    a second reader (a full-resolution conv, or a classifier) was ignored when a pooled conv also read the
    channels; a gate whose MLP is shared by two pooled copies (CBAM) was pruned as a ThiNet layer."""
    torch.manual_seed(0)
    m = Heads(gate).eval()
    assert {p.name: p.consumer_name for p in find_prunable(m, build_graph(m, 8))} == {"c1.0": "c2.0", "c2.0": "head"}
    for second in ("conv", "linear"):
        m = Heads(gate, second).eval()
        assert {p.name: p.consumer_name for p in find_prunable(m, build_graph(m, 8))} == {"c1.0": "c2.0"}


def test_pooling_to_a_grid_is_not_a_summary_and_a_users_vgg_class_is_not_torchvisions():
    """An adaptive pooling to 4x4 (a pyramid branch, a fixed-size trunk) made every conv after it a 'gate'; any class
    named VGG got ThiNet's VGG rule, and one built of nested stages (no top-level max-pool) lost every layer."""
    class VGG(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Sequential(cbr(3, 8), nn.MaxPool2d(2)), nn.AdaptiveAvgPool2d(4),
                                          nn.Sequential(cbr(8, 8), cbr(8, 8)), nn.Sequential(cbr(8, 8)))
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(self.features(x).mean((2, 3)))

    m = VGG().eval()
    assert prunable(m, 16) == ["features.0.0.0", "features.2.0.0", "features.2.1.0"]
