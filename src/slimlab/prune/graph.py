"""Structural surgery through Torch-Pruning's ``DependencyGraph``, and which layers to prune.

Selection and re-weighting are ours; the removal is Torch-Pruning's: pruning the output channels
of a conv removes the matching channels of its BN, of depthwise convs, SE convs, concatenations and
of every layer that consumes them, so the result is a smaller dense model.

Default layers: every conv whose pruning group is *local*: the group holds no other dense conv's
output channels (so it is not tied to a residual sum) and no linear layer, and one dense conv
consumes the channels (ThiNet's layer i+1). That picks exactly ThiNet's choices: the inner convs
of basic and bottleneck blocks (block outputs keep their width), the expansion convs of inverted
residual / MBConv blocks (through the depthwise conv to the projection; in models built of such
blocks nothing else), and plain chains (VGG, NIN, MobileNetV1's pointwise convs).
For VGG the last block is left alone, as ThiNet does (it prunes conv1_1..conv4_3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch_pruning as tp

SE_CLASS_NAMES = ("SqueezeExcite", "SqueezeExcitation", "SEModule", "SqueezeExcite2d")
INVERTED_CLASS_NAMES = ("InvertedResidual", "MBConv", "DepthwiseSeparableConv", "InvertedResidualBlock")


@dataclass
class PrunableLayer:
    name: str  # layer i: its output channels are pruned
    conv: nn.Conv2d
    consumer_name: str  # layer i+1: the dense conv whose input ThiNet reconstructs
    consumer: nn.Conv2d
    first_name: str  # the first conv that reads layer i's activation (a depthwise conv, or the consumer)
    first: nn.Conv2d


def build_graph(model: nn.Module, input_size: int | tuple[int, int] = 32, in_chans: int = 3) -> tp.DependencyGraph:
    """Torch-Pruning's dependency graph of ``model``, traced in eval mode on one zero image. The trace needs
    autograd, so it runs with gradients on (also inside ``torch.no_grad()`` and for frozen parameters); a model
    it cannot trace is one line, and the model is left in the mode it was in."""
    from slimlab.errors import SlimlabError

    p = next(model.parameters())
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    example = torch.zeros(1, in_chans, h, w, device=p.device)
    was, flags = model.training, {n: q.requires_grad for n, q in model.named_parameters()}
    model.eval()
    try:
        with torch.no_grad():  # the model's own error first (torch-pruning retries a failed forward another way)
            shapes = _shapes(model(example))
    except Exception as e:  # noqa: BLE001 - the model cannot run on this input at all
        model.train(was)
        raise SlimlabError(f"{type(model).__name__} cannot run on a {h}x{w} image with {in_chans} channels "
                           f"({_first_line(e)})") from None
    try:
        with torch.enable_grad():
            for q in model.parameters():
                q.requires_grad_(True)
            dg = tp.DependencyGraph().build_dependency(model, example_inputs=(example,))  # a bare tensor is unpacked
    except SlimlabError:
        raise
    except Exception as e:  # noqa: BLE001 - torch-pruning's own failure, on a model it cannot follow
        raise SlimlabError(f"torch-pruning cannot trace {type(model).__name__} ({_first_line(e)})") from None
    finally:
        model.train(was)
        restore_requires_grad(model, flags)
    dg.slimlab_example, dg.slimlab_shapes = example, shapes  # what the surgery check runs and compares against
    return dg


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'no message'}"


def restore_requires_grad(model: nn.Module, flags: dict[str, bool]) -> None:
    """Give every parameter still in ``model`` its ``requires_grad`` of before (tracing and torch-pruning's
    surgery turn it on; a frozen layer stays frozen)."""
    for n, q in model.named_parameters():
        if n in flags:
            q.requires_grad_(flags[n])


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels


def _se_convs(model: nn.Module) -> set[int]:
    ids = set()
    for m in model.modules():
        if type(m).__name__ in SE_CLASS_NAMES:
            ids |= {id(c) for c in m.modules() if isinstance(c, nn.Conv2d)}
    return ids


def _vgg_last_block(model: nn.Module) -> set[int]:
    """Convs after the last-but-one max-pool of a VGG's ``features`` (ThiNet keeps them)."""
    import torchvision

    from slimlab.models.vgg import VGG

    if not isinstance(model, (VGG, torchvision.models.VGG)):
        return set()
    feats = list(model.features)
    pools = [i for i, m in enumerate(feats) if isinstance(m, nn.MaxPool2d)]
    start = pools[-2] + 1 if len(pools) >= 2 else 0
    return {id(m) for m in feats[start:] if isinstance(m, nn.Conv2d)}


def _expansion_convs(model: nn.Module) -> set[int] | None:
    """The expansion convs of inverted-residual blocks, or None when the model has no block with one (MobileNetV1
    and LCNet are depthwise-separable blocks only: their pointwise convs are the layers, as in any plain chain)."""
    found = set()
    for m in model.modules():
        if type(m).__name__ in INVERTED_CLASS_NAMES:
            convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
            if any(_is_depthwise(c) for c in convs) and not _is_depthwise(convs[0]) and convs[0].kernel_size == (1, 1):
                found.add(id(convs[0]))
    return found or None


def find_prunable(model: nn.Module, dg: tp.DependencyGraph, names: list[str] | None = None,
                  ignored: list[str] | None = None, check: bool = True) -> list[PrunableLayer]:
    """The layers to prune, in forward order: ``names`` if given, else the default rule above; never a layer in
    ``ignored`` or under one (a module name: ``layer4`` leaves every conv of ``layer4`` whole). ``check`` tries
    their surgery on a copy first (:func:`survivors`); a caller that prunes copies of a model many times passes
    the names found checked once, with ``check=False``."""
    from slimlab.errors import SlimlabError

    name_of = {id(m): n for n, m in model.named_modules()}
    ignored = list(ignored or [])
    bad = [n for n in ignored if n not in set(name_of.values())]
    if bad:
        raise SlimlabError(f"--ignore-layers: no such module(s) {', '.join(sorted(bad))}")
    se = _se_convs(model)
    skip = _vgg_last_block(model) if names is None else set()
    only = _expansion_convs(model) if names is None else None
    wanted = set(names or [])
    _check_names(model, dg, wanted, ignored)
    out: list[PrunableLayer] = []
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv2d) or m.groups != 1 or id(m) in se or m.out_channels < 2:
            continue
        if names is not None and name not in wanted:
            continue
        if any(name == ig or name.startswith(ig + ".") for ig in ignored):
            continue
        if id(m) in skip or (only is not None and id(m) not in only):
            continue
        if m not in dg.module2node:  # not on the traced forward path (an auxiliary head used in training only)
            if names is not None:
                raise SlimlabError(f"layers (--layers): {name} is not used by the model's forward pass in eval mode")
            continue
        group = dg.get_pruning_group(m, tp.prune_conv_out_channels, idxs=[0])
        consumers, local, first = [], True, None
        for dep, _ in group:
            mod = dep.target.module
            fn = dep.handler
            if mod is m:
                continue
            if isinstance(mod, nn.Linear):
                local = False
            elif isinstance(mod, nn.Conv2d) and id(mod) not in se:
                if _is_depthwise(mod):
                    first = first or mod
                elif getattr(fn, "__name__", "") == "prune_out_channels":
                    local = False
                else:
                    consumers.append(mod)
        why = None if local and len(consumers) == 1 else ("its channels are tied to a residual sum, a linear "
                                                          "layer, or several consumers")
        if why is None and not _reads_it_plainly(dg, m, consumers[0]):
            why = ("the next convolution does not read its channels one to one (a concatenation, a reshape such "
                   "as a channel shuffle, or a grouped convolution between them)")
        if why is not None:
            if names is not None:
                raise SlimlabError(f"layers (--layers): {name} cannot be pruned on its own: {why}")
            continue
        c = consumers[0]
        f = first or c
        out.append(PrunableLayer(name, m, name_of[id(c)], c, name_of[id(f)], f))
    return survivors(model, dg, out, named=names is not None) if check else out


def survivors(model: nn.Module, dg: tp.DependencyGraph, layers: list[PrunableLayer],
              named: bool = False) -> list[PrunableLayer]:
    """The layers whose removal leaves a model that runs, tried on a copy (one channel off each): torch-pruning
    does not know every layer (a conv subclass with a per-channel gain, a learned tensor added to an activation),
    and a surgery it gets wrong would break the user's model half-way. All layers at once first; on a failure,
    one by one with those kept so far: the default plan drops the failing ones, a layer the user named is one
    line. A model that cannot be copied is not checked (one that cannot run fails in :func:`build_graph`)."""
    from slimlab.errors import SlimlabError

    example, want = getattr(dg, "slimlab_example", None), getattr(dg, "slimlab_shapes", None)
    if not layers or example is None or _runs_after_surgery(model, example, want, layers):
        return layers
    kept: list[PrunableLayer] = []
    for p in layers:  # one by one, each with those kept before it (layers fine alone may break together)
        if _runs_after_surgery(model, example, want, [*kept, p]):
            kept.append(p)
        elif named:
            raise SlimlabError(f"layers (--layers): removing channels of {p.name} breaks the model (torch-pruning "
                               f"does not follow everything that reads them): leave it out")
    return kept


def _shapes(out: object) -> list[tuple[int, ...]]:
    """The shapes of every tensor in a forward's output (a tensor, or a tuple, list or dict of them)."""
    return [tuple(t.shape) for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def _runs_after_surgery(model: nn.Module, example: torch.Tensor, want: list[tuple[int, ...]],
                        layers: list[PrunableLayer]) -> bool:
    """Whether a copy of ``model`` with one channel off each of ``layers`` still runs and gives outputs of the
    unpruned shapes ``want`` (recorded by :func:`build_graph`)."""
    import copy

    try:
        twin = copy.deepcopy(model).eval()
    except Exception:  # noqa: BLE001 - a model that cannot be copied is not checked
        return True
    try:
        dg = build_graph(twin, tuple(example.shape[-2:]), example.shape[1])
        mods = dict(twin.named_modules())
        for p in layers:
            conv = mods[p.name]
            prune_out_channels(dg, conv, torch.arange(1, conv.out_channels))
        with torch.no_grad():
            return _shapes(twin(example)) == want
    except torch.OutOfMemoryError:
        raise
    except Exception:  # noqa: BLE001 - any failure of the surgery or of the pruned forward
        return False


# graph nodes that keep channel i at position i: what may lie between layer i and the conv that reads it
_PLAIN = {tp.ops.OPTYPE.BN, tp.ops.OPTYPE.ELEMENTWISE, tp.ops.OPTYPE.DEPTHWISE_CONV, tp.ops.OPTYPE.PRELU}
# functional operations (autograd names without "Backward<n>") that act on each channel at its own position;
# torch-pruning files every operation it does not know (a flip, a roll, an index) as element-wise
_CHANNELWISE = {
    "Add", "Sub", "Mul", "Div", "Neg", "Abs", "Pow", "Sqrt", "Rsqrt", "Exp", "Log", "Reciprocal", "Clone", "Alias",
    "ToCopy", "Relu", "Hardtanh", "Clamp", "ClampMin", "ClampMax", "Threshold", "Sigmoid", "Tanh", "Hardswish",
    "Hardsigmoid", "Silu", "Gelu", "Elu", "LeakyRelu", "Mish", "Softplus", "NativeDropout", "MaxPool2DWithIndices",
    "AvgPool2D", "AdaptiveAvgPool2D", "AdaptiveMaxPool2D", "UpsampleNearest2D", "UpsampleBilinear2D",
    "UpsampleBicubic2D", "UpsampleNearestExact2D", "Expand", "Mean", "Sum", "Amax", "Max", "NativeBatchNorm",
    "CudnnBatchNorm", "MiopenBatchNorm", "Rsub", "Erf", "Minimum", "Maximum", "ConstantPadNd", "ReflectionPad2D",
    "ReplicationPad2D"}


def _channelwise(node) -> bool:
    """Whether a graph node keeps every channel at its own position: a known layer type, or a functional operation
    on the list above (a mean or sum not over the channels)."""
    if node.type != tp.ops.OPTYPE.ELEMENTWISE or not isinstance(node.module, tp.ops._ElementWiseOp):
        return node.type in _PLAIN
    fn = node.grad_fn
    name = type(fn).__name__.split("Backward")[0]
    if name not in _CHANNELWISE:
        return False
    if name == "ConstantPadNd":  # timm's "same" padding: spatial only (4 numbers), never the channels
        return len(getattr(fn, "_saved_pad", ()) or ()) <= 4
    dims = getattr(fn, "_saved_dim", None)
    if name in ("Mean", "Sum", "Amax", "Max") and dims is not None:
        rank = len(getattr(fn, "_saved_self_sym_sizes", ()) or ()) or 4
        dims = [dims] if isinstance(dims, int) else list(dims)
        return all((d - 2**64 if d >= 2**63 else d) % rank != 1 for d in dims)
    return name not in ("Sum", "Amax", "Max")  # a reduction over every dimension mixes the channels


def _reads_it_plainly(dg: tp.DependencyGraph, conv: nn.Conv2d, consumer: nn.Conv2d) -> bool:
    """Whether ``consumer`` (a dense conv) reads ``conv``'s output channels one to one: as many input channels as
    ``conv`` has outputs, and only channel-wise operations between them (BatchNorm, activations, pooling, a
    depthwise conv, an SE gate). A concatenation, split, reshape (a channel shuffle), flip, roll, index or grouped
    conv between them would make ThiNet's columns of the consumer's input other channels than the layer's (or
    torch-pruning's surgery wrong), so such a layer is not pruned on its own."""
    if consumer.groups != 1 or consumer.in_channels != conv.out_channels:
        return False
    stack, seen = list(dg.module2node[conv].outputs), set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        mod = node.module
        if node.type in (tp.ops.OPTYPE.CONV, tp.ops.OPTYPE.LINEAR) and not _is_depthwise(mod):
            if isinstance(mod, nn.Conv2d) and mod.groups != 1:
                return False  # a grouped conv reads it
            continue  # a dense layer ends the path (the consumer; an SE block's convs read a pooled copy)
        if not _channelwise(node):
            return False
        stack.extend(node.outputs)
    return True


def _check_names(model: nn.Module, dg: tp.DependencyGraph, wanted: set[str], ignored: list[str]) -> None:
    """One line for a --layers name that is not in the model, or not a dense convolution (naming those that are)."""
    from slimlab.errors import SlimlabError

    modules = dict(model.named_modules())
    unknown = wanted - set(modules)
    if unknown:
        raise SlimlabError(f"layers (--layers): no such layer(s) {', '.join(sorted(unknown))}")
    not_conv = sorted(n for n in wanted if not isinstance(modules[n], nn.Conv2d) or modules[n].groups != 1)
    if not_conv:
        prunable = [p.name for p in find_prunable(model, dg, None, ignored)]
        more = " ..." if len(prunable) > 12 else ""
        raise SlimlabError(f"layers (--layers): {', '.join(not_conv)} is not a dense convolution; the layers "
                           f"slimlab prunes by default are {', '.join(prunable[:12]) or 'none'}{more}")


def prune_out_channels(dg: tp.DependencyGraph, conv: nn.Conv2d, keep: torch.Tensor) -> None:
    """Remove every output channel of ``conv`` not in ``keep`` (and all that depends on it)."""
    keep_set = set(keep.tolist())
    drop = [i for i in range(conv.out_channels) if i not in keep_set]
    if not drop:
        return
    group = dg.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=drop)
    if not dg.check_pruning_group(group):
        raise RuntimeError(f"torch-pruning refused to prune {conv}")
    mods = [dep.target.module for dep, _ in group]
    flags = {(id(m), n): q.requires_grad for m in mods for n, q in m.named_parameters(recurse=False)}
    group.prune()
    for m in mods:  # torch-pruning's new parameters require grad: a frozen layer stays frozen
        for n, q in m.named_parameters(recurse=False):
            q.requires_grad_(flags.get((id(m), n), q.requires_grad))
