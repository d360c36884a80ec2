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
For VGG the last block and the FC layers are left alone, as ThiNet does (it prunes conv1_1..conv4_3).
An attention gate (layers on a pooled summary whose output scales the channels: squeeze-and-excitation under
any class name, selective kernel, split attention) is neither a layer nor a consumer; a head conv on pooled
features is a consumer. GCNet's context blocks of known layouts are one unit (:mod:`slimlab.prune.context_block`).
A default plan that finds nothing says why, counted by reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch_pruning as tp

from slimlab.prune.context_block import context_convs, opaque_blocks

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
            with opaque_blocks(model) as pruners:
                dg = tp.DependencyGraph().build_dependency(model, example_inputs=(example,),  # a tensor is unpacked
                                                           customized_pruners=pruners)
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
    """The convs of squeeze-and-excitation blocks and of GCNet's context blocks (by class name)."""
    ids = context_convs(model)
    for m in model.modules():
        if type(m).__name__ in SE_CLASS_NAMES:
            ids |= {id(c) for c in m.modules() if isinstance(c, nn.Conv2d)}
    return ids


def _vgg_last_block(model: nn.Module) -> set[int]:
    """The convs of a VGG that ThiNet keeps: those after the last-but-one max-pool of its ``features``, and every
    conv outside ``features`` (timm's ``pre_logits``: the FC layers as convs). slimlab's, torchvision's and timm's
    VGG only: a user's own class of that name may be laid out otherwise (stages without a top-level pool)."""
    import torchvision

    from slimlab.models.vgg import VGG

    feats = getattr(model, "features", None)
    timm_vgg = type(model).__name__ == "VGG" and type(model).__module__ == "timm.models.vgg"
    if not (isinstance(model, (VGG, torchvision.models.VGG)) or timm_vgg) or not isinstance(feats, nn.Sequential):
        return set()
    layers = list(feats)
    pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
    start = pools[-2] + 1 if len(pools) >= 2 else 0
    kept = {id(c) for m in layers[start:] for c in m.modules() if isinstance(c, nn.Conv2d)}
    inside = {id(m) for m in feats.modules()}
    return kept | {id(m) for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in inside}


class Pooled:
    """Where a graph carries pooled summaries: the nodes whose value is computed from global poolings of feature
    maps alone (every data input traced back reaches one: a shared MLP on an average- and a max-pooled copy
    included), and the dense layers among them. Those layers are an attention gate's (squeeze-and-excitation,
    CBAM's channel attention, selective kernel, split attention, a user's own gate of convs or linear layers
    under any class name), a head conv on pooled features, or a classifier; a gate computed beside the main path
    (``t * sigmoid(t.mean(...))``) leaves the next conv a full-resolution reader."""

    def __init__(self, dg: tp.DependencyGraph):
        self.nodes = _pooled_nodes(list(dg.module2node.values()))
        self.layers = {id(mod) for mod, node in dg.module2node.items()
                       if isinstance(mod, (nn.Conv2d, nn.Linear)) and not _is_depthwise(mod) and id(node) in self.nodes}


def _pooled_nodes(nodes: list) -> set[int]:
    """Ids of the nodes computed from global poolings alone (iterative: a deep network would exhaust recursion)."""
    memo: dict[int, bool] = {}
    for start in nodes:
        stack, visiting = [start], set()
        while stack:
            n = stack[-1]
            if id(n) in memo:
                stack.pop()
                continue
            if n.grad_fn is not None and _pools_space(n.grad_fn):
                memo[id(n)] = True
                stack.pop()
                continue
            ins = _data_inputs(n)
            todo = [i for i in ins if id(i) not in memo and id(i) not in visiting]
            if todo:
                visiting.add(id(n))
                stack.extend(todo)
                continue
            memo[id(n)] = bool(ins) and all(memo.get(id(i), False) for i in ins)
            visiting.discard(id(n))
            stack.pop()
    return {k for k, v in memo.items() if v}


def _data_inputs(node) -> list:
    """A graph node's inputs but parameters and the leaves made of them alone (a linear layer's transposed weight,
    a learned map added to an activation: the surgery check judges those)."""
    return [n for n in node.inputs if n.type != tp.ops.OPTYPE.PARAMETER
            and (n.inputs or not isinstance(n.module, tp.ops._ElementWiseOp))]


def _pools_space(fn) -> bool:
    """Whether an autograd node pools each channel over its whole plane (to 1x1, or over both spatial dimensions):
    a mean or max over H and W, an adaptive or plain pooling whose result is 1x1. An adaptive average pooling to
    a larger grid (a pyramid pooling branch) is not a summary; to 1x1 PyTorch computes it as a mean."""
    name = _op_name(fn)
    if name in ("Mean", "Amax", "Sum"):
        reduced = _reduced_dims(fn)
        return reduced is not None and reduced[1] == 4 and {2, 3} <= reduced[0] and 1 not in reduced[0]
    if name in ("AdaptiveMaxPool2D", "MaxPool2DWithIndices"):
        out = getattr(fn, "_saved_result1", None)
        return out is not None and tuple(out.shape[-2:]) == (1, 1)
    if name == "AvgPool2D":
        x, k = getattr(fn, "_saved_self", None), getattr(fn, "_saved_kernel_size", None)
        pad = tuple(getattr(fn, "_saved_padding", (0, 0)) or (0, 0))
        return x is not None and k is not None and all(p == 0 for p in pad) and tuple(k) == tuple(x.shape[-2:])
    return False


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
    the names found checked once, with ``check=False``. A default plan that finds nothing is one line that says
    why each dense convolution was left out (counted by reason)."""
    from slimlab.errors import SlimlabError

    name_of = {id(m): n for n, m in model.named_modules()}
    ignored = list(ignored or [])
    bad = [n for n in ignored if n not in set(name_of.values())]
    if bad:
        raise SlimlabError(f"ignored layers (--ignore-layers): no such module(s) {', '.join(sorted(bad))}")
    se, pooled = _se_convs(model), Pooled(dg)
    gates = se | pooled.layers  # convs of attention gates and pooled heads: never a layer
    rule = _default_rule(model) if names is None else None
    wanted = set(names or [])
    _check_names(model, dg, wanted, ignored)
    out: list[PrunableLayer] = []
    left_out: dict[str, str] = {}  # default plan: dense conv -> why it is not a layer
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv2d) or m.groups != 1 or m.out_channels < 2:
            continue
        if (names is not None and name not in wanted) or any(name == ig or name.startswith(ig + ".")
                                                             for ig in ignored):
            continue
        why = _SE if id(m) in gates else (rule(m) if rule else None)
        if why is None and m not in dg.module2node:  # off the traced path (an auxiliary head used in training)
            if names is not None:
                raise SlimlabError(f"layers (--layers): {name} is not used by the model's forward pass in eval mode")
            why = "off the forward pass in eval mode"
        why = why or _cheap_reason(dg, m, pooled)  # before the group: that may cost minutes (see there)
        layer = None
        if why is None:
            layer, why = _as_layer(dg, m, se, pooled, name_of)
        if why is not None and names is not None:
            raise SlimlabError(f"layers (--layers): {name} cannot be pruned on its own: {why}")
        if layer is None:
            left_out[name] = why
        else:
            out.append(layer)
    kept = survivors(model, dg, out, named=names is not None) if check else out
    left_out.update({p.name: _BREAKS for p in out if p not in kept})
    if names is None and not kept and left_out:
        raise SlimlabError(why_none(model, left_out))
    return kept


# why a dense conv is not a layer, each a phrase that follows "N dense convolutions" and "cannot be pruned on its own:"
_SE = "reading a pooled summary (an attention gate's convolution, or a head on pooled features)"
_BREAKS = "unsafe to cut: the model breaks when one is pruned (torch-pruning does not follow all that reads it)"
_VGG_LAST = "in VGG's last block or FC layers (ThiNet keeps them)"
_NOT_EXPANSION = "not an inverted-residual block's expansion convolution"
_MODEL_RULES = (_VGG_LAST, _NOT_EXPANSION)
_TIED = "tied to a residual sum, a linear layer, or several consumers"
_NOT_PLAIN = ("not read one to one by the next convolution (a concatenation, a reshape such as a channel shuffle, "
              "or a grouped convolution between them)")


def why_none(model: nn.Module, left_out: dict[str, str]) -> str:
    """The empty default plan's one line: each reason with its count and first layer, most common first. The
    convolutions of attention gates and pooled heads are never candidates and are not counted; only the
    model-level rules (VGG's last block, inverted residuals' other convs) can be overridden by naming layers."""
    from collections import Counter

    left = {n: why for n, why in left_out.items() if why != _SE}
    counts, first = Counter(left.values()), {}
    for name, why in left.items():
        first.setdefault(why, name)
    parts = [f"{n} {why}, such as {first[why]}" for why, n in counts.most_common()]
    gates = len(left_out) - len(left)
    head = (f"no prunable layer found in {type(model).__name__}: of its {len(left)} dense convolutions"
            + (f" outside attention gates and pooled heads ({gates} more)" if gates else ""))
    hint = ("; --layers (layers=[...] in Python) can name those the model-level rules left out"
            if set(left.values()) & set(_MODEL_RULES) else "")
    return f"{head}: " + "; ".join(parts or ["none"]) + hint


def _default_rule(model: nn.Module):
    """The default plan's model-level exclusions as a function conv -> reason or None: VGG's last block and
    its FC layers, and in models of inverted-residual blocks every conv but their expansion convs."""
    skip, only = _vgg_last_block(model), _expansion_convs(model)

    def rule(m: nn.Conv2d) -> str | None:
        if id(m) in skip:
            return _VGG_LAST
        if only is not None and id(m) not in only:
            return _NOT_EXPANSION
        return None
    return rule


def _as_layer(dg: tp.DependencyGraph, m: nn.Conv2d, se: set[int], pooled: Pooled,
              name_of: dict[int, str]) -> tuple[PrunableLayer | None, str | None]:
    """``m`` as ThiNet's layer i if its pruning group is local (one dense consumer, no residual sum, no linear
    layer) and that consumer reads its channels one to one; else None and why not. An attention gate (pooled
    layers leading to one whose outputs scale these channels) neither consumes nor ties them; any other pooled
    reader is a head: a conv on pooled features (timm's ``conv_head``) is a consumer, a classifier ties them."""
    group = dg.get_pruning_group(m, tp.prune_conv_out_channels, idxs=[0])
    consumers, local, first, readers, gates = [], True, None, [], set()
    for dep, _ in group:
        mod = dep.target.module
        if mod is m or not isinstance(mod, (nn.Conv2d, nn.Linear)) or id(mod) in se:
            continue
        if _is_depthwise(mod):
            first = first or mod
        elif getattr(dep.handler, "__name__", "") == "prune_out_channels":  # its outputs are these channels
            local = local and id(mod) in pooled.layers
            gates.add(id(mod))
        elif id(mod) in pooled.layers:
            readers.append(mod)
        elif isinstance(mod, nn.Linear):
            local = False
        else:
            consumers.append(mod)
    for r in readers:
        if not _feeds(dg.module2node[r], gates, pooled):
            local = local and not isinstance(r, nn.Linear)
            consumers.append(r)
    if not local or len(consumers) != 1:
        return None, _TIED
    c = consumers[0]
    if c.groups != 1 or c.in_channels != m.out_channels:  # (the path to it was found channel-wise by _cheap_reason)
        return None, _NOT_PLAIN
    f = first or c
    return PrunableLayer(name_of[id(m)], m, name_of[id(c)], c, name_of[id(f)], f), None


def _feeds(node, gates: set[int], pooled: Pooled) -> bool:
    """Whether a pooled reader's output reaches one of ``gates`` (pooled layers whose outputs scale the channels)
    through pooled values only: it is that gate's first layer."""
    stack, seen = list(node.outputs), set()
    while stack:
        n = stack.pop()
        if id(n) in seen or id(n) not in pooled.nodes:
            continue
        seen.add(id(n))
        if id(n.module) in gates:
            return True
        stack.extend(n.outputs)
    return False


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
# (slimlab registers one customized pruner, a context block's, which keeps channel i at position i)
_PLAIN = {tp.ops.OPTYPE.BN, tp.ops.OPTYPE.ELEMENTWISE, tp.ops.OPTYPE.DEPTHWISE_CONV, tp.ops.OPTYPE.PRELU,
          tp.ops.OPTYPE.CUSTOMIZED}
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
    name = _op_name(fn)
    if name not in _CHANNELWISE:
        return False
    if name == "ConstantPadNd":  # timm's "same" padding: spatial only (4 numbers), never the channels
        return len(getattr(fn, "_saved_pad", ()) or ()) <= 4
    reduced = _reduced_dims(fn) if name in ("Mean", "Sum", "Amax", "Max") else None
    if reduced is not None:
        return 1 not in reduced[0]
    return name not in ("Sum", "Amax", "Max")  # a reduction over every dimension mixes the channels


def _op_name(fn) -> str:
    """An autograd node's operation: ``MeanBackward1`` -> ``Mean``."""
    return type(fn).__name__.split("Backward")[0]


def _reduced_dims(fn) -> tuple[set[int], int] | None:
    """The dimensions a reduction's autograd node reduced (made non-negative) and its input's rank (4 if it did not
    save its input's shape); None when it saved no dimensions (a reduction over everything)."""
    dims = getattr(fn, "_saved_dim", None)
    if dims is None:
        return None
    sizes = getattr(fn, "_saved_self_sym_sizes", None) or tuple(getattr(getattr(fn, "_saved_self", None), "shape", ()))
    rank = len(sizes) or 4
    dims = [dims] if isinstance(dims, int) else list(dims)
    return {(d - 2**64 if d >= 2**63 else d) % rank for d in dims}, rank


def _downstream(dg: tp.DependencyGraph, conv: nn.Conv2d) -> tuple[dict[int, object], bool]:
    """The channel-wise graph nodes between ``conv``'s output and the next dense layers (by id), and whether every
    path there is channel-wise (a path stops at the first node that is not, or at a grouped conv): whether the next
    conv reads ``conv``'s channels one to one, through BatchNorm, activations, pooling, a depthwise conv or an SE
    gate only. A concatenation, split, reshape (a channel shuffle), flip, roll, index or grouped conv between them
    would make ThiNet's columns of the consumer's input other channels than the layer's (or torch-pruning's surgery
    wrong), so such a layer is not pruned on its own."""
    stack, seen, region, plain = [(n, False) for n in dg.module2node[conv].outputs], set(), {}, True
    while stack:
        node, pooled = stack.pop()  # pooled: past a spatial pooling, where a flatten keeps the channels in place
        if (id(node), pooled) in seen:
            continue
        seen.add((id(node), pooled))
        mod = node.module
        if node.type == tp.ops.OPTYPE.OUTPUT:  # the model's output (its last operation): nothing reads it
            continue
        if node.type in (tp.ops.OPTYPE.CONV, tp.ops.OPTYPE.LINEAR) and not _is_depthwise(mod):
            plain = plain and not (isinstance(mod, nn.Conv2d) and mod.groups != 1)  # a grouped conv reads it
            continue  # a dense layer ends the path (the consumer; an SE block's convs read a pooled copy)
        if not (_channelwise(node) or (pooled and _flattens(node))):
            plain = False
            continue
        region[id(node)] = node
        pooled = pooled or (node.grad_fn is not None and _pools_space(node.grad_fn))
        stack.extend((n, pooled) for n in node.outputs)
    return region, plain


def _cheap_reason(dg: tp.DependencyGraph, conv: nn.Conv2d, pooled: Pooled) -> str | None:
    """Why ``conv`` cannot be a layer, from the graph alone, or None: a sum with channels from elsewhere (a
    residual: an input of an add or subtraction that neither comes from ``conv`` nor from an attention gate), or a
    path to the next dense layers that is not channel-wise. It runs before the pruning group, which can cost
    minutes and gigabytes: torch-pruning maps indices through every reshape the group reaches (timm's
    EfficientViT)."""
    region, plain = _downstream(dg, conv)
    start = dg.module2node[conv]
    for node in region.values():
        if node.grad_fn is None or _op_name(node.grad_fn) not in ("Add", "Sub"):
            continue
        for inp in _data_inputs(node):
            if inp is not start and id(inp) not in region and id(inp) not in pooled.nodes:
                return _TIED
    return None if plain else _NOT_PLAIN


def _flattens(node) -> bool:
    """A view, flatten or squeeze: on a pooled (N, C, 1, 1) summary it keeps every channel at its position."""
    fn = node.grad_fn
    return fn is not None and _op_name(fn) in (
        "View", "Reshape", "UnsafeView", "Squeeze", "Unsqueeze", "Alias")


def _check_names(model: nn.Module, dg: tp.DependencyGraph, wanted: set[str], ignored: list[str]) -> None:
    """One line for a --layers name that is not in the model, or not a dense convolution (naming those that are)."""
    from slimlab.errors import SlimlabError

    modules = dict(model.named_modules())
    unknown = wanted - set(modules)
    if unknown:
        raise SlimlabError(f"layers (--layers): no such layer(s) {', '.join(sorted(unknown))}")
    not_conv = sorted(n for n in wanted if not isinstance(modules[n], nn.Conv2d) or modules[n].groups != 1)
    if not_conv:
        try:
            prunable = [p.name for p in find_prunable(model, dg, None, ignored)]
        except SlimlabError:  # none at all (that line's reasons are for the default plan, not this question)
            prunable = []
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
    flags = {(id(m), n): q.requires_grad for m in mods for n, q in m.named_parameters()}  # a context block's too
    group.prune()
    for m in mods:  # torch-pruning's new parameters require grad: a frozen layer stays frozen
        for n, q in m.named_parameters():
            q.requires_grad_(flags.get((id(m), n), q.requires_grad))
