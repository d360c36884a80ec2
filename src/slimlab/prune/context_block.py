"""GCNet's global context block (Cao et al., 2019) as one unit for torch-pruning's surgery.

The block reads x (N, C, H, W), pools it with attention and adds (or multiplies in) a transform of the summary:

    context = sum_j softmax_j(W_k x_j) x_j          (conv_mask: C -> 1, a softmax over the H*W positions)
    out     = x + W_v2 ReLU(LN(W_v1 context))       (or x * sigmoid(...): the MLP is C -> C/r -> C)

Channel i of x stays channel i of the output, so removing channels of x means removing the same input channels
of conv_mask and of each MLP's first conv and the same output channels of its last conv. Torch-pruning cannot
follow the pooling itself (a batched matrix product over a reshaped map: its group for one channel takes minutes
and, on a small case, cut the next conv to zero outputs), so :func:`context_pruners` hands it each block as a
leaf with this rule. Known layouts: timm's ``GlobalContext`` (``conv_attn``, ``mlp_add``, ``mlp_scale``) and
mmcv's ``ContextBlock`` (``conv_mask``, ``channel_add_conv``, ``channel_mul_conv``). A block of another class is
left to the graph, which keeps the convolution before it whole (a residual-like sum it cannot see through).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch_pruning as tp

CONTEXT_CLASS_NAMES = ("GlobalContext", "ContextBlock")
_MASKS = ("conv_attn", "conv_mask")
_MLPS = ("mlp_add", "mlp_scale", "channel_add_conv", "channel_mul_conv")


def _parts(block: nn.Module) -> tuple[list[nn.Conv2d], list[tuple[nn.Conv2d, nn.Conv2d]]] | None:
    """The block's attention convs and each MLP's (first, last) convs, or None when it is not a known layout."""
    masks = [m for a in _MASKS if isinstance(m := getattr(block, a, None), nn.Conv2d)]
    mlps = []
    for a in _MLPS:
        mlp = getattr(block, a, None)
        convs = [c for c in mlp.modules() if isinstance(c, nn.Conv2d)] if isinstance(mlp, nn.Module) else []
        if len(convs) == 2 and convs[0].groups == 1 and convs[1].groups == 1:
            mlps.append((convs[0], convs[1]))
        elif mlp is not None:
            return None
    if not mlps:
        return None
    c = mlps[0][0].in_channels
    if any(f.in_channels != c or last.out_channels != c for f, last in mlps) or any(m.in_channels != c
                                                                                    for m in masks):
        return None
    return masks, mlps


class ContextBlockPruner(tp.pruner.function.BasePruningFunc):
    """Removes channels of a context block's input and output at once (see the module's docstring)."""

    def prune_out_channels(self, layer: nn.Module, idxs: Sequence[int]) -> nn.Module:
        masks, mlps = _parts(layer)
        for m in masks:
            tp.prune_conv_in_channels(m, idxs)
        for first, last in mlps:
            tp.prune_conv_in_channels(first, idxs)
            tp.prune_conv_out_channels(last, idxs)
        return layer

    prune_in_channels = prune_out_channels  # one set of channels in and out: an intra-layer dependency

    def get_out_channels(self, layer: nn.Module) -> int:
        return _parts(layer)[1][0][0].in_channels

    get_in_channels = get_out_channels


def context_pruners(model: nn.Module) -> dict[type, ContextBlockPruner]:
    """The classes of ``model``'s context blocks with their pruner, for torch-pruning's ``customized_pruners``
    (which takes classes: this torch-pruning fails on instances); a class with any block of another layout is
    left out."""
    blocks: dict[type, bool] = {}
    for m in model.modules():
        if type(m).__name__ in CONTEXT_CLASS_NAMES:
            blocks[type(m)] = blocks.get(type(m), True) and _parts(m) is not None
    return {cls: ContextBlockPruner() for cls, known in blocks.items() if known}


class _Opaque(torch.autograd.Function):
    """The block's output as one autograd node on its input: torch-pruning then sees x -> block -> next layer."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, run) -> torch.Tensor:  # noqa: ARG004 - autograd's signature
        with torch.no_grad():
            return run(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ARG004
        return grad, None


@contextmanager
def opaque_blocks(model: nn.Module) -> Iterator[dict[type, ContextBlockPruner]]:
    """While tracing: each known context block runs as one node (torch-pruning still traces a leaf module's insides
    from its output back to its input, and would meet the pooling there); yields :func:`context_pruners`."""
    pruners = context_pruners(model)
    blocks = [m for m in model.modules() if type(m) in pruners]  # torch-pruning matches the exact class
    own = {id(b): vars(b).get("forward") for b in blocks}  # a forward of the instance's own (a wrapper) is kept
    for b in blocks:
        b.forward = (lambda run: lambda x: _Opaque.apply(x, run))(b.forward)
    try:
        yield pruners
    finally:
        for b in blocks:
            if own[id(b)] is None:
                del b.forward
            else:
                b.forward = own[id(b)]


def context_convs(model: nn.Module) -> set[int]:
    """The ids of the convs inside known context blocks: part of an attention block, never a layer to prune."""
    pruners = context_pruners(model)
    return {id(c) for b in model.modules() if type(b) in pruners for c in b.modules() if isinstance(c, nn.Conv2d)}
