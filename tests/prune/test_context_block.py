"""GCNet's global context block: the conv before it is a layer, and removing its channels gives the model computed
by hand from the kept slices of every weight (the block's attention conv, MLP input and output, the next conv)."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from slimlab.prune import prune_module
from slimlab.prune.context_block import context_pruners
from slimlab.prune.graph import build_graph, find_prunable, prune_out_channels


class ContextBlock(nn.Module):
    """mmcv's layout: attention pooling, then a bottleneck MLP added (``fusion="add"``) or gating (``"mul"``)."""

    def __init__(self, c: int, fusion: str = "add", hidden: int = 4):
        super().__init__()
        self.fusion, self.conv_mask = fusion, nn.Conv2d(c, 1, 1)
        mlp = nn.Sequential(nn.Conv2d(c, hidden, 1), nn.LayerNorm([hidden, 1, 1]), nn.ReLU(), nn.Conv2d(hidden, c, 1))
        self.channel_add_conv = mlp if fusion == "add" else None
        self.channel_mul_conv = mlp if fusion == "mul" else None

    def forward(self, x):
        b, c, h, w = x.shape
        weights = F.softmax(self.conv_mask(x).view(b, 1, h * w), -1).unsqueeze(-1)  # (B, 1, HW, 1)
        context = torch.matmul(x.view(b, 1, c, h * w), weights).view(b, c, 1, 1)
        if self.fusion == "add":
            return x + self.channel_add_conv(context)
        return x * torch.sigmoid(self.channel_mul_conv(context))


class Net(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.gc, self.c3, self.fc = block, nn.Conv2d(8, 6, 3, padding=1), nn.Linear(6, 3)

    def forward(self, x):
        x = self.gc(F.relu(self.c2(F.relu(self.c1(x)))))
        return self.fc(F.relu(self.c3(x)).mean((2, 3)))


def by_hand(net: Net, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The pruned forward from the original weights' kept slices, the block written out as GCNet's equations."""
    gc = net.gc
    mlp = gc.channel_add_conv if gc.fusion == "add" else gc.channel_mul_conv
    t = F.relu(F.conv2d(F.relu(net.c1(x)), net.c2.weight[keep], net.c2.bias[keep], padding=1))
    a = F.conv2d(t, gc.conv_mask.weight[:, keep], gc.conv_mask.bias).flatten(1).softmax(-1)  # (B, HW)
    context = (t.flatten(2) * a[:, None, :]).sum(-1)[..., None, None]  # sum_j a_j x_j, per channel
    h = F.relu(mlp[1](F.conv2d(context, mlp[0].weight[:, keep], mlp[0].bias)))
    z = F.conv2d(h, mlp[3].weight[keep], mlp[3].bias[keep])
    t = t + z if gc.fusion == "add" else t * torch.sigmoid(z)
    return net.fc(F.relu(F.conv2d(t, net.c3.weight[:, keep], net.c3.bias, padding=1)).mean((2, 3)))


@pytest.mark.parametrize("fusion", ["add", "mul"])
def test_removing_channels_before_a_context_block_equals_the_kept_slices_by_hand(fusion):
    torch.manual_seed(0)
    net = Net(ContextBlock(8, fusion)).eval()
    x, keep = torch.randn(4, 3, 8, 8), torch.tensor([0, 2, 3, 6, 7])
    with torch.no_grad():
        want = by_hand(net, x, keep)
        dg = build_graph(net, 8)
        assert [p.name for p in find_prunable(net, dg)] == ["c1", "c2"]
        prune_out_channels(dg, net.c2, keep)
        got = net(x)
    assert net.gc.conv_mask.in_channels == 5 and net.c3.in_channels == 5
    assert torch.allclose(got, want, atol=1e-5)


def test_a_context_block_of_an_unknown_layout_keeps_the_conv_before_it_whole():
    """The same block under a class name slimlab does not know: torch-pruning cannot follow its pooling, so the
    conv before it is left out (as a residual-like sum), and the plan still prunes what it can."""

    class MyContext(ContextBlock):
        pass

    net = Net(MyContext(8)).eval()
    assert context_pruners(net) == {}
    assert [p.name for p in find_prunable(net, build_graph(net, 8))] == ["c1"]
    both = Net(ContextBlock(8)).eval()  # a known block and a subclass's in one model: the subclass is not opaque
    both.c3 = nn.Sequential(MyContext(8), nn.Conv2d(8, 6, 3, padding=1))
    assert [p.name for p in find_prunable(both, build_graph(both, 8), check=False)] == ["c1"]


def test_tracing_keeps_a_blocks_own_forward():
    block = ContextBlock(8)
    block.forward = wrapped = (lambda x: ContextBlock.forward(block, x))  # an instance's own forward (a wrapper)
    net = Net(block).eval()
    build_graph(net, 8)
    assert vars(block)["forward"] is wrapped


def test_timms_gcresnet_prunes_the_conv_before_each_context_block_and_runs():
    timm = pytest.importorskip("timm")
    net = timm.create_model("gcresnet33ts", num_classes=10, pretrained=False).eval()
    names = [p.name for p in find_prunable(net, build_graph(net, 32))]
    assert "stages.1.0.conv2_kxk.conv" in names and len(names) == 22  # each block's two inner convs, the stem's two
    pruned, report = prune_module(net, torch.randn(16, 3, 32, 32), method="weight_sum", keep_ratio=0.5,
                                  mode="oneshot", recalibrate=False)
    gc = pruned.stages[1][0].attn
    assert gc.conv_attn.in_channels == gc.mlp_add.fc1.in_channels == gc.mlp_add.fc2.out_channels == 64
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 10)
