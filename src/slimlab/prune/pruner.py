"""Pruning schedules: layer by layer (ThiNet's way) or one-shot, to a ratio or a MACs target.

Layer by layer: for each prunable layer in forward order, collect calibration statistics from the
*current* model, select the kept channels, re-weight layer i+1 (ThiNet), remove the rest, and
optionally fine-tune for ``ft_per_layer`` steps; then a final fine-tune through the engine. One-shot:
collect every layer's statistics from the original model, prune all, then fine-tune.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.profile import count_macs, count_params
from slimlab.prune import apoz, random_criterion, thinet, weight_sum  # noqa: F401  (they register themselves)
from slimlab.prune.config import PruneConfig  # noqa: F401  (its old home)
from slimlab.prune.criterion import (
    ACTIVATION,
    CONSUMER_INPUT,
    FIRST_INPUT,
    Criterion,
    CriterionOptions,
    LayerStats,
    Selection,
    build_criterion,
)
from slimlab.prune.graph import PrunableLayer, build_graph, find_prunable, prune_out_channels

METHODS = ("thinet", "apoz", "l1", "random")  # the CLI's historical names; see CRITERIA for all


def keep_count(channels: int, ratio: float, round_to: int = 1) -> int:
    """Channels kept of ``channels`` at keep ratio ``ratio``: at least one; with ``round_to`` > 1, the nearest
    multiple of it (at least one multiple, at most all channels), so kernels see hardware-friendly widths."""
    k = max(1, min(channels, int(channels * ratio)))
    if round_to > 1:
        k = min(channels, max(round_to, round_to * round(k / round_to)))
    return k


class Calibration:
    """Calibration images (``per_class`` per class from the training set), normalised, no augmentation."""

    def __init__(self, images: torch.Tensor, batch: int = 256):
        self.images, self.batch = images, batch

    @torch.no_grad()
    def inputs_of(self, model: nn.Module, modules: list[nn.Module]) -> list[torch.Tensor]:
        """The inputs of ``modules`` over the calibration set, one [N, C, H, W] tensor each."""
        store: list[list[torch.Tensor]] = [[] for _ in modules]
        hooks = [m.register_forward_pre_hook(lambda mod, inp, i=i: store[i].append(inp[0].detach()))
                 for i, m in enumerate(modules)]
        was = model.training
        model.eval()
        try:
            dev = next(model.parameters()).device
            for s in range(0, len(self.images), self.batch):
                model(self.images[s: s + self.batch].to(dev))
        finally:
            for h in hooks:
                h.remove()
            model.train(was)
        return [torch.cat(x).float().cpu() for x in store]

    @torch.no_grad()
    def activations_of(self, model: nn.Module, convs: list[nn.Conv2d]) -> list[torch.Tensor]:
        """Each conv's output before its nonlinearity over the calibration set: the output of the BatchNorm that
        reads the conv's output directly, else the conv's own output (one [N, C, H, W] tensor each)."""
        store: list[list[torch.Tensor]] = [[] for _ in convs]
        current: dict[int, torch.Tensor] = {}
        produced: dict[int, tuple[int, int]] = {}  # id(conv output) -> (conv index, its version), in one forward

        def conv_hook(i):
            def h(mod, inp, out):
                current[i], produced[id(out)] = out, (i, out._version)
            return h

        def bn_hook(mod, inp, out):  # the conv's output itself, not changed in place since (an inplace ReLU)
            i, version = produced.get(id(inp[0]), (None, None))
            if i is not None and current.get(i) is inp[0] and inp[0]._version == version:
                current[i] = out

        hooks = [c.register_forward_hook(conv_hook(i)) for i, c in enumerate(convs)]
        hooks += [m.register_forward_hook(bn_hook) for m in model.modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        was = model.training
        model.eval()
        try:
            dev = next(model.parameters()).device
            for s in range(0, len(self.images), self.batch):
                current.clear()
                produced.clear()
                model(self.images[s: s + self.batch].to(dev))
                for i in range(len(convs)):
                    store[i].append(current[i].detach().float().cpu())
        finally:
            for h in hooks:
                h.remove()
            model.train(was)
        return [torch.cat(x) for x in store]

    def stats(self, model: nn.Module, plan: list[PrunableLayer], needs: frozenset[str]) -> list[LayerStats]:
        """One :class:`LayerStats` per layer of ``plan``, holding what a criterion ``needs``."""
        wanted = [(i, key, getattr(p, "first" if key == FIRST_INPUT else "consumer"))
                  for i, p in enumerate(plan) for key in (FIRST_INPUT, CONSUMER_INPUT) if key in needs]
        out = [LayerStats() for _ in plan]
        if wanted:
            for (i, key, _), x in zip(wanted, self.inputs_of(model, [m for _, _, m in wanted])):
                setattr(out[i], key, x)
        if ACTIVATION in needs:
            for st, a in zip(out, self.activations_of(model, [p.conv for p in plan])):
                st.activation = a
        return out


def select_layer(method: str, layer: PrunableLayer, keep: int, first_in: torch.Tensor | None,
                 consumer_in: torch.Tensor | None, variant: str, per_image: int, g: torch.Generator,
                 target=None):
    """Kept channel indices of ``layer`` (+ ThiNet's per-channel scales of layer i+1, else None).

    The functional form of :meth:`Criterion.select`; ``target(generator)``, when given, returns the
    responses y to reconstruct at the same sampled positions (the unpruned model's)."""
    crit = build_criterion(method, CriterionOptions(variant=variant, per_image=per_image))
    responses = None if target is None else (lambda gen, _per_image: target(gen))  # per_image is fixed here
    sel = crit.select(layer, keep, LayerStats(first_input=first_in, consumer_input=consumer_in,
                                              target_responses=responses), g)
    return sel.kept, sel.scales


def apply_selection(dg, layer: PrunableLayer, kept: torch.Tensor, w: torch.Tensor | None) -> None:
    if w is not None:  # ThiNet Eq. 6: scale the kept input channels of layer i+1
        with torch.no_grad():
            layer.consumer.weight[:, kept] *= w.to(layer.consumer.weight)[None, :, None, None]
    prune_out_channels(dg, layer.conv, kept)


def check_options(ratio: float, mode: str, variant: str, target: str, refine: bool = False) -> None:
    """One-line errors for option values out of their sets, before any work is done."""
    if not 0 < ratio <= 1:
        raise SlimlabError(f"keep_ratio (--keep-ratio) must be in (0, 1], got {ratio}")
    if mode not in ("layerwise", "oneshot"):
        raise SlimlabError(f"unknown pruning mode '{mode}' (layerwise, oneshot)")
    if variant not in ("iccv", "tpami"):
        raise SlimlabError(f"unknown ThiNet variant '{variant}' (iccv, tpami)")
    if target not in ("current", "original"):
        raise SlimlabError(f"unknown ThiNet target '{target}' (current, original)")
    if refine and variant == "tpami":
        raise SlimlabError("--thinet-refine improves the ICCV selection (Eq. 5); TPAMI's forward selection fits "
                           "another objective: use one or the other")


# how a refused progress file's message ends: the command line's words (prune_module passes its own)
RESTART = "start over with --overwrite"  # for a file of another run or plan, or a damaged one
FOREIGN = "remove it, or start over with --overwrite"  # for a file that is not a progress file (never deleted)


def prune_model(model: nn.Module, method: str | Criterion, ratio: float, calib: Calibration | None, *,
                input_size: int = 32, layers: list[str] | None = None, mode: str = "layerwise",
                variant: str = "iccv", per_image: int = 10, seed: int = 0, between_layers=None,
                target: str = "current", refine: bool = False, samples_per_weight: float = 0.0,
                apoz_at: str = "relu", round_to: int = 1, ignored: list[str] | None = None,
                in_chans: int = 3, keep: dict[str, int] | None = None,
                state_file: str | Path | None = None, state_key: dict | None = None,
                progress: Callable[[str], None] | None = None, check_surgery: bool = True,
                state_restart: str = RESTART, state_foreign: str = FOREIGN) -> dict:
    """Prune ``model`` in place, keeping ``ratio`` of the channels of every pruned layer (a criterion's name,
    or a :class:`Criterion`); return {layer name: [channels before, kept]} and the time spent.

    ``target="original"`` (layer by layer, ThiNet): re-weight layer i+1 to reproduce the *unpruned*
    model's responses from the pruned model's inputs, as He et al. 2017 (channel pruning, Eq. 1) do, so
    that the error of the layers pruned before is corrected rather than carried along.
    ``round_to`` rounds every kept count to a multiple (:func:`keep_count`); ``ignored`` layers keep their
    output channels; ``input_size`` may be (H, W). ``keep`` gives the kept count of some layers instead of
    ``ratio`` (an allocation: :mod:`slimlab.prune.allocation`).

    ``state_file`` (layer by layer): after every layer the selections so far, the weights and the random state
    are written there atomically (:class:`LayerwiseState`); a file found there continues the same plan where it
    stopped, with the same result as a run never stopped (on the same device, threads and process count), if
    ``state_key`` (what must not change: the run, the source checkpoint) matches; a refused file's message ends
    with ``state_restart`` (how to start over), or ``state_foreign`` for a file that is not a progress file (it is
    never deleted). ``between_layers`` may carry
    state too (its ``state_dict()`` / ``load_state_dict()``). ``progress`` receives one line per layer pruned.
    ``check_surgery=False`` skips trying the layers' surgery on a copy (:func:`slimlab.prune.graph.survivors`): for
    callers that prune many copies of one model with layers already found checked."""
    check_options(ratio, mode, variant, target, refine)
    crit = method if isinstance(method, Criterion) else build_criterion(
        method, CriterionOptions(variant=variant, per_image=per_image, refine=refine,
                                 samples_per_weight=samples_per_weight, apoz_at=apoz_at))
    if crit.needs and calib is None:
        raise SlimlabError(f"{crit.name} needs calibration data")
    t0 = time.time()
    dg = build_graph(model, input_size, in_chans)
    plan = find_prunable(model, dg, layers or None, ignored, check=check_surgery)  # False: layers checked already
    if not plan:
        raise SlimlabError("no prunable layer found (name them: --layers on the command line, layers=[...] in Python)")
    g = torch.Generator().manual_seed(seed)
    channels = _kept_counts(model, plan, ratio, round_to, keep or {})
    if mode == "oneshot":
        _prune_oneshot(model, dg, plan, crit, calib, channels, g)
        return {"channels": channels, "prune_s": time.time() - t0}
    originals = _original_inputs(model, plan, calib) if target == "original" and crit.reweights else None
    state = LayerwiseState(state_file, [p.name for p in plan], channels, between_layers, state_key, state_restart,
                           state_foreign)
    start = state.restore(model, dg, plan, g)
    if start:  # the time spent before the kill, setup included, is in the file
        t0 = time.time() - state.elapsed
        if progress:
            progress(f"resumed: {start} of {len(plan)} layers pruned already ({state.path})")

    def done(name: str, kept: torch.Tensor) -> None:
        state.save(model, name, kept, g, time.time() - t0)
        if progress:
            progress(f"layer {len(state.kept)}/{len(plan)} {name}: {channels[name][0]} -> {channels[name][1]} "
                     f"channels ({time.time() - t0:.0f}s)")

    _prune_layerwise(model, dg, plan[start:], crit, calib, channels, g, originals, between_layers, done)
    return {"channels": channels, "prune_s": time.time() - t0}


def _kept_counts(model: nn.Module, plan: list[PrunableLayer], ratio: float, round_to: int,
                 keep: dict[str, int]) -> dict[str, list[int]]:
    """{layer: [channels, kept]}: ``keep``'s count where it gives one, else ``ratio`` of the channels."""
    bad = sorted(n for n, k in keep.items() if n not in {p.name: 0 for p in plan}
                 or not 1 <= k <= model.get_submodule(n).out_channels)
    if bad:
        raise SlimlabError(f"kept counts for layers that are not pruned, or out of range: {', '.join(bad[:5])}")
    return {p.name: [p.conv.out_channels, keep.get(p.name, keep_count(p.conv.out_channels, ratio, round_to))]
            for p in plan}


def _prune_oneshot(model, dg, plan, crit: Criterion, calib, channels: dict, g: torch.Generator) -> None:
    """Every layer's statistics from the unpruned model, every selection made, then all removed."""
    stats = calib.stats(model, plan, crit.needs) if crit.needs else [LayerStats() for _ in plan]
    picks = [crit.select(p, channels[p.name][1], st, g) for p, st in zip(plan, stats)]
    for p, sel in zip(plan, picks):
        apply_selection(dg, p, sel.kept, sel.scales)


def _prune_layerwise(model, dg, plan, crit: Criterion, calib, channels: dict, g: torch.Generator,
                     originals: dict | None, between_layers, done=None) -> None:
    """ThiNet's schedule: each layer's statistics from the current, partly pruned model (``done(name, kept)``
    after each layer and its fine-tuning)."""
    for p in plan:
        st = calib.stats(model, [p], crit.needs)[0] if crit.needs else LayerStats()
        if originals is not None:
            name, twin, x_orig = originals[id(p.consumer)]
            if twin.out_channels != p.consumer.out_channels:
                raise SlimlabError(f"--thinet-target original: {name} was pruned before its input layer; "
                                   "use the current target")
            st.target_responses = lambda gen, k, x=x_orig, t=twin: thinet.collect_samples(x, t, k, gen)[1]
        sel = same_on_every_rank(crit.select(p, channels[p.name][1], st, g))
        apply_selection(dg, p, sel.kept, sel.scales)
        if between_layers is not None:
            between_layers(model)
        if done is not None:
            done(p.name, sel.kept)


class LayerwiseState:
    """A layer-by-layer prune's progress in one file: the kept indices of the layers done (replayed on the unpruned
    model they rebuild its architecture), the weights after the last of them (its fine-tuning included), the
    selection generator's state and the state of ``between_layers``. Loaded with ``weights_only=True``."""

    VERSION = 1

    def __init__(self, path: str | Path | None, plan: list[str], channels: dict, between_layers=None,
                 key: dict | None = None, restart: str = RESTART, foreign: str = FOREIGN):
        self.path, self.restart, self.foreign = None if path is None else Path(path), restart, foreign
        self.plan, self.channels, self.between, self.elapsed = plan, channels, between_layers, 0.0
        self.key = {**(key or {}), "world_size": _rank_world()[1]}
        self.kept: dict[str, torch.Tensor] = {}

    def save(self, model: nn.Module, name: str, kept: torch.Tensor, g: torch.Generator, elapsed: float) -> None:
        self.kept[name] = kept.cpu()
        if self.path is None or _rank_world()[0] != 0:  # rank 0 writes the file
            return
        from slimlab.io import atomic_save

        between = getattr(self.between, "state_dict", None)
        atomic_save({"version": self.VERSION, "key": self.key, "plan": self.plan, "channels": self.channels,
                     "kept": self.kept,
                     "model": model.state_dict(), "generator": g.get_state(), "elapsed": elapsed,
                     "between_layers": between() if between else {}}, self.path)

    def restore(self, model: nn.Module, dg, plan: list[PrunableLayer], g: torch.Generator) -> int:
        """How many layers of ``plan`` the file says are done (0 without one); their pruning is replayed."""
        if self.path is None or not self.path.is_file():
            return 0
        from slimlab.engine.checkpoint import read_weights_only

        try:
            _, st = read_weights_only(self.path)
        except SlimlabError:
            st = None
        if not isinstance(st, dict) or st.get("version") != self.VERSION:
            raise SlimlabError(f"{self.path} is not a slimlab pruning progress file (left as it is): {self.foreign}")
        if st.get("key") != self.key:
            raise SlimlabError(f"{self.path} was written {_key_difference(st.get('key'), self.key)}: {self.restart}")
        if st.get("plan") != self.plan or st.get("channels") != self.channels:
            raise SlimlabError(f"{self.path} is the progress of another pruning plan (other layers or kept counts): "
                               f"{self.restart}")
        try:
            return self._replay(st, model, dg, plan, g)
        except SlimlabError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise SlimlabError(f"{self.path} is damaged ({type(e).__name__}: {str(e).splitlines()[0][:120]}): "
                               f"{self.restart}") from None

    def _replay(self, st: dict, model: nn.Module, dg, plan: list[PrunableLayer], g: torch.Generator) -> int:
        self.kept = dict(st["kept"])
        done = plan[:len(self.kept)]
        if [p.name for p in done] != list(self.kept):
            raise SlimlabError(f"{self.path}: its layers are not the first of the plan: {self.restart}")
        for p in done:
            prune_out_channels(dg, p.conv, self.kept[p.name].to(p.conv.weight.device))
        _same_layout(model, st["model"])
        model.load_state_dict(st["model"])
        g.set_state(st["generator"])
        if getattr(self.between, "load_state_dict", None):
            self.between.load_state_dict(st["between_layers"])
        self.elapsed = float(st["elapsed"])
        return len(done)


def _rank_world() -> tuple[int, int]:
    """(this process's rank, the number of processes): (0, 1) without a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# why a progress file's key differs, for the keys whose difference has a likely cause
_KEY_CAUSES = {
    "images": "for other calibration images (a DataLoader with shuffle=True gives others at each call: pass one "
              "without shuffling, or the same images, to continue)",
    "weights": "for a model with other weights",
    "world_size": "by another number of processes",
}


def _key_difference(a: dict | None, b: dict) -> str:
    """How the key a progress file was written for differs from this call's, in words."""
    a = a or {}
    k = next((k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)), "?")
    return _KEY_CAUSES.get(k) or f"by another run, from another checkpoint ({k}: {a.get(k)!r} in the file, " \
                                  f"{b.get(k)!r} now)"


def _same_layout(model: nn.Module, state: dict) -> None:
    """Give the model's 4-d tensors the memory format of the saved ones (fine-tuning leaves them channels-last),
    so that the layers after a resume are computed with the same kernels as without one."""
    own = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for name, t in state.items():
        p = own.get(name)
        if p is None or t.dim() != 4 or t.shape != p.shape:
            continue
        last = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
        p.data = p.data.contiguous(memory_format=torch.channels_last if last else torch.contiguous_format)


def same_on_every_rank(sel: Selection) -> Selection:
    """Rank 0's selection on every rank. Under DDP the fine-tuning between layers leaves each rank its own
    BatchNorm statistics, so the ranks' calibration statistics, and their selections, could differ: the
    pruned architectures must not."""
    import torch.distributed as dist

    if _rank_world()[1] == 1:
        return sel
    box = [sel.kept.cpu(), None if sel.scales is None else sel.scales.cpu()]
    dist.broadcast_object_list(box, src=0)
    return Selection(box[0].to(sel.kept.device), None if box[1] is None else box[1].to(sel.kept.device))


def _original_inputs(model: nn.Module, plan: list[PrunableLayer], calib: Calibration) -> dict:
    """consumer id -> (its name, its unpruned twin, the twin's calibration input), collected once:
    the unpruned model never changes."""
    original = copy.deepcopy(model)
    names = {id(m): n for n, m in model.named_modules()}
    twins = [original.get_submodule(names[id(p.consumer)]) for p in plan]
    inputs = calib.inputs_of(original, twins)
    return {id(p.consumer): (names[id(p.consumer)], t, x) for p, t, x in zip(plan, twins, inputs)}


def ratio_for_macs(model: nn.Module, target: float, input_size: int | tuple[int, int],
                   layers: list[str] | None = None, tol: float = 0.005, round_to: int = 1,
                   ignored: list[str] | None = None, in_chans: int = 3) -> float:
    """The largest uniform keep ratio whose pruned model has at most ``target`` x the MACs (bisection)."""
    base = count_macs(model, input_size, in_chans=in_chans)
    names = [p.name for p in find_prunable(model, build_graph(model, input_size, in_chans), layers or None, ignored)]

    def macs_at(r: float) -> float:
        m = copy.deepcopy(model)
        dg = build_graph(m, input_size, in_chans)
        for p in find_prunable(m, dg, names, ignored, check=False):  # the plan checked once, above
            prune_out_channels(dg, p.conv, torch.arange(keep_count(p.conv.out_channels, r, round_to)))
        return count_macs(m, input_size, in_chans=in_chans) / base

    if macs_at(1.0) <= target:
        return 1.0
    lo, hi = 0.0, 1.0
    floor = macs_at(1e-6)
    if floor > target:
        raise SlimlabError(f"target_macs (--target-macs) {target}: pruning the default layers can only reach "
                           f"{floor:.3f} of the MACs (add layers: --layers, or layers=[...] in Python)")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if macs_at(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo


def plot_channels(channels: dict[str, list[int]], path: Path, title: str = "") -> None:
    from slimlab.io import pyplot, save_figure

    plt = pyplot()
    names = list(channels)
    fig, ax = plt.subplots(figsize=(max(5, 0.28 * len(names) + 2), 3.4))
    x = range(len(names))
    ax.bar(x, [channels[n][0] for n in names], color="#d0d7e2", label="original")
    ax.bar(x, [channels[n][1] for n in names], color="#3b6fb6", label="kept")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel("channels")
    ax.set_title(title or "channels kept per layer")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def model_stats(model: nn.Module, input_size: int) -> dict:
    return {"params": count_params(model), "macs": count_macs(model, input_size)}
