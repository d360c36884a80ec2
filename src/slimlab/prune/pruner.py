"""Pruning schedules: layer by layer (ThiNet's way) or one-shot, to a ratio or a MACs target.

Layer by layer: for each prunable layer in forward order, collect calibration statistics from the
*current* model, select the kept channels, re-weight layer i+1 (ThiNet), remove the rest, and
optionally fine-tune for ``ft_per_layer`` steps; then a final fine-tune through the engine. One-shot:
collect every layer's statistics from the original model, prune all, then fine-tune.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.profile import count_macs, count_params
from slimlab.prune import thinet
from slimlab.prune.apoz import select_by_apoz
from slimlab.prune.graph import PrunableLayer, build_graph, find_prunable, prune_out_channels
from slimlab.prune.random_criterion import select_random
from slimlab.prune.weight_sum import select_by_weight_sum

METHODS = ("thinet", "apoz", "l1", "random")


@dataclass
class PruneConfig:
    """Options of ``slimlab prune``. Field comments are the CLI help."""

    checkpoint: str = ""  # the trained model (.pt or run directory)
    data: str = ""  # data set (default: the checkpoint's)
    root: str = "~/.cache/slimlab/data"
    method: str = "thinet"  # thinet | apoz | l1 | random
    ratio: float = 0.5  # fraction of channels kept in each pruned layer (ThiNet's compression rate r)
    target_macs: float = 0.0  # instead of --ratio: prune to at most this fraction of the MACs (bisection)
    layers: list = field(default_factory=list)  # layer names to prune (default: ThiNet's choice)
    mode: str = "layerwise"  # layerwise | oneshot
    thinet_variant: str = "iccv"  # iccv (greedy removal) | tpami (forward selection)
    thinet_target: str = "current"  # layerwise re-weighting target: current (ThiNet) | original (unpruned model)
    calib_per_class: int = 10  # calibration images per class (the paper: 10)
    samples_per_image: int = 10  # ThiNet (filter, location) samples per image (the paper: 10)
    ft_per_layer: int = 0  # SGD steps of fine-tuning after each pruned layer
    ft_lr: float = 0.01  # fine-tuning learning rate
    finetune_epochs: int = 0  # final fine-tuning epochs
    labels_from: str = ""  # fine-tune on corrected labels from a PENCIL run directory
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    latency: bool = True  # measure CPU latency of the original and the pruned model
    progress: str = "auto"
    out: str = ""


def keep_count(channels: int, ratio: float) -> int:
    return max(1, min(channels, int(channels * ratio)))


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


def select_layer(method: str, layer: PrunableLayer, keep: int, first_in: torch.Tensor | None,
                 consumer_in: torch.Tensor | None, variant: str, per_image: int, g: torch.Generator,
                 target=None):
    """Kept channel indices of ``layer`` (+ ThiNet's per-channel scales of layer i+1, else None).

    ``target(generator)``, when given, returns the responses y to reconstruct at the same sampled
    positions (the unpruned model's), in place of the current model's."""
    c = layer.conv.out_channels
    if method == "l1":
        return select_by_weight_sum(layer.conv, keep), None
    if method == "random":
        return select_random(c, keep, g), None
    if method == "apoz":
        return select_by_apoz(first_in, keep), None
    if method == "thinet":
        state = g.get_state()
        x_hat, y = thinet.collect_samples(consumer_in, layer.consumer, per_image, g)
        if target is not None:
            y = target(torch.Generator().set_state(state))
        if variant == "tpami":
            kept = thinet.select_channels_tpami(x_hat, y, keep)
        else:
            kept = thinet.select_channels(x_hat, keep)
        w = thinet.reweight(x_hat, y, kept) if len(kept) < c else None
        return kept, w
    raise SlimlabError(f"unknown pruning method '{method}' (choose from {', '.join(METHODS)})")


def _needs(method: str) -> tuple[bool, bool]:
    return method == "apoz", method == "thinet"


def apply_selection(dg, layer: PrunableLayer, kept: torch.Tensor, w: torch.Tensor | None) -> None:
    if w is not None:  # ThiNet Eq. 6: scale the kept input channels of layer i+1
        with torch.no_grad():
            layer.consumer.weight[:, kept] *= w.to(layer.consumer.weight)[None, :, None, None]
    prune_out_channels(dg, layer.conv, kept)


def prune_model(model: nn.Module, method: str, ratio: float, calib: Calibration | None, *, input_size: int = 32,
                layers: list[str] | None = None, mode: str = "layerwise", variant: str = "iccv",
                per_image: int = 10, seed: int = 0, between_layers=None, target: str = "current") -> dict:
    """Prune ``model`` in place; return {layer name: [channels before, kept]} and the time spent.

    ``target="original"`` (layer by layer, ThiNet): re-weight layer i+1 to reproduce the *unpruned*
    model's responses from the pruned model's inputs, as He et al. 2017 (channel pruning, Eq. 1) do, so
    that the error of the layers pruned before is corrected rather than carried along."""
    if not 0 < ratio <= 1:
        raise SlimlabError(f"--ratio must be in (0, 1], got {ratio}")
    if mode not in ("layerwise", "oneshot"):
        raise SlimlabError(f"unknown pruning mode '{mode}' (layerwise, oneshot)")
    if variant not in ("iccv", "tpami"):
        raise SlimlabError(f"unknown ThiNet variant '{variant}' (iccv, tpami)")
    if target not in ("current", "original"):
        raise SlimlabError(f"unknown ThiNet target '{target}' (current, original)")
    if method not in METHODS:
        raise SlimlabError(f"unknown pruning method '{method}' (choose from {', '.join(METHODS)})")
    need_first, need_consumer = _needs(method)
    if (need_first or need_consumer) and calib is None:
        raise SlimlabError(f"{method} needs calibration data")
    t0 = time.time()
    dg = build_graph(model, input_size)
    plan = find_prunable(model, dg, layers or None)
    if not plan:
        raise SlimlabError("no prunable layer found (give --layers)")
    g = torch.Generator().manual_seed(seed)
    channels: dict[str, list[int]] = {}
    if mode == "oneshot":
        mods = ([p.first for p in plan] if need_first else []) + ([p.consumer for p in plan] if need_consumer else [])
        acts = calib.inputs_of(model, mods) if mods else []
        firsts = acts[: len(plan)] if need_first else [None] * len(plan)
        consumers = acts[len(plan) if need_first else 0:] if need_consumer else [None] * len(plan)
        picks = []
        for p, fi, ci in zip(plan, firsts, consumers):
            keep = keep_count(p.conv.out_channels, ratio)
            picks.append(select_layer(method, p, keep, fi, ci, variant, per_image, g))
            channels[p.name] = [p.conv.out_channels, keep]
        for p, (kept, w) in zip(plan, picks):
            apply_selection(dg, p, kept, w)
    else:
        orig_in: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}  # consumer id -> its unpruned twin and input
        if method == "thinet" and target == "original":
            original = copy.deepcopy(model)  # the unpruned model never changes: collect its inputs once
            names = {id(m): n for n, m in model.named_modules()}
            twins = [original.get_submodule(names[id(p.consumer)]) for p in plan]
            orig_in = {id(p.consumer): (t, x) for p, t, x in zip(plan, twins, calib.inputs_of(original, twins))}
        for p in plan:
            mods = ([p.first] if need_first else []) + ([p.consumer] if need_consumer else [])
            acts = calib.inputs_of(model, mods) if mods else []
            fi = acts[0] if need_first else None
            ci = acts[-1] if need_consumer else None
            keep = keep_count(p.conv.out_channels, ratio)
            channels[p.name] = [p.conv.out_channels, keep]
            responses = None
            if orig_in:
                twin, x_orig = orig_in[id(p.consumer)]
                if twin.out_channels != p.consumer.out_channels:
                    raise SlimlabError(f"--thinet-target original: {names[id(p.consumer)]} was pruned before its "
                                       "input layer; use the current target")

                def responses(gen, twin=twin, x_orig=x_orig):
                    return thinet.collect_samples(x_orig, twin, per_image, gen)[1]
            kept, w = select_layer(method, p, keep, fi, ci, variant, per_image, g, responses)
            apply_selection(dg, p, kept, w)
            if between_layers is not None:
                between_layers(model)
    return {"channels": channels, "prune_s": time.time() - t0}


def ratio_for_macs(model: nn.Module, target: float, input_size: int, layers: list[str] | None = None,
                   tol: float = 0.005) -> float:
    """The largest uniform keep ratio whose pruned model has at most ``target`` x the MACs (bisection)."""
    base = count_macs(model, input_size)

    def macs_at(r: float) -> float:
        m = copy.deepcopy(model)
        dg = build_graph(m, input_size)
        for p in find_prunable(m, dg, layers or None):
            prune_out_channels(dg, p.conv, torch.arange(keep_count(p.conv.out_channels, r)))
        return count_macs(m, input_size) / base

    if macs_at(1.0) <= target:
        return 1.0
    lo, hi = 0.0, 1.0
    floor = macs_at(1e-6)
    if floor > target:
        raise SlimlabError(f"--target-macs {target}: pruning the default layers can only reach {floor:.3f} "
                           "of the MACs (add --layers)")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if macs_at(mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo


def plot_channels(channels: dict[str, list[int]], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(channels)
    before = [channels[n][0] for n in names]
    after = [channels[n][1] for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 0.28 * len(names) + 2), 3.4))
    x = range(len(names))
    ax.bar(x, before, color="#d0d7e2", label="original")
    ax.bar(x, after, color="#3b6fb6", label="kept")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_ylabel("channels")
    ax.set_title(title or "channels kept per layer")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def model_stats(model: nn.Module, input_size: int) -> dict:
    return {"params": count_params(model), "macs": count_macs(model, input_size)}
