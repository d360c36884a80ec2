"""Where to prune: the kept channels of every layer for a MACs target (``--allocation``).

ThiNet keeps one ratio r in every pruned layer (``uniform``). The two other allocations choose a count
per layer; the criterion then selects *which* channels, layer by layer, exactly as with one ratio.

``global`` (Torch-Pruning's global pruning): channel c of layer l has its criterion's importance
s_lc (:meth:`Criterion.scores`), normalised by the layer's mean, s^_lc = s_lc / mean_c s_lc. Channels
are removed in increasing s^ over all layers at once, each layer keeping at least ceil(floor * C_l)
(its highest), until the model has at most the target MACs (bisection on how many are removed).

``sensitivity``: a profile d_l(r), the accuracy drop (points) when layer l alone keeps ratio r and
nothing is fine-tuned (measured on held-out images by :func:`measure_sensitivity`, or read from a
file), predicts an allocation's drop as sum_l d_l(r_l), layers taken as independent, d_l linear between
measured ratios and d_l(1) = 0. The counts solve

    min_k  sum_l d_l(k_l / C_l)   s.t.   M_0 + sum_l a_l k_l <= target MACs

over k_l in a grid from C_l down to the lowest measured ratio (never below the floor): a multiple-choice
knapsack solved exactly by dynamic programming on discretised MACs (:func:`choose`). a_l (MACs per kept
channel of layer l) and M_0 come from pruning each layer alone; the linear model is exact when pruned
layers do not feed each other (residual blocks), and the true MACs are counted afterwards, the budget
tightened while they exceed the target.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.profile import count_macs
from slimlab.prune.criterion import Criterion, LayerStats
from slimlab.prune.graph import build_graph, find_prunable, prune_out_channels

if TYPE_CHECKING:
    from slimlab.prune.pruner import Calibration

ALLOCATIONS = ("uniform", "global", "sensitivity")
GRID_STEP = 0.05  # sensitivity: candidate keep ratios 1, 0.95, 0.9, ... (and the measured ones)


class Shape:
    """The pruned layers of a model and the MACs of any per-layer kept counts (counted on a pruned copy)."""

    def __init__(self, model: nn.Module, input_size: int | tuple[int, int], layers: list[str] | None = None,
                 ignored: list[str] | None = None, in_chans: int = 3, round_to: int = 1):
        self.model, self.input_size, self.in_chans, self.round_to = model, input_size, in_chans, round_to
        self.layers, self.ignored = layers, ignored
        self.channels = {p.name: p.conv.out_channels
                         for p in find_prunable(model, build_graph(model, input_size, in_chans), layers, ignored)}
        self.base = count_macs(model, input_size, in_chans=in_chans)

    def rounded(self, name: str, k: int) -> int:
        """``k`` kept channels of layer ``name`` rounded up to a multiple of ``round_to`` (at most all)."""
        c, r = self.channels[name], self.round_to
        return min(c, max(1, r * math.ceil(k / r))) if r > 1 else min(c, max(1, k))

    def macs(self, counts: dict[str, int]) -> int:
        m = copy.deepcopy(self.model)
        dg = build_graph(m, self.input_size, self.in_chans)
        for p in find_prunable(m, dg, list(self.channels), self.ignored, check=False):  # checked in __init__
            if p.name in counts:
                prune_out_channels(dg, p.conv, torch.arange(self.rounded(p.name, counts[p.name])))
        return count_macs(m, self.input_size, in_chans=self.in_chans)

    def linear_costs(self) -> tuple[float, dict[str, float]]:
        """(M_0, {layer: a_l}): MACs = M_0 + sum_l a_l k_l, each a_l from pruning its layer alone to half."""
        per = {}
        for name, c in self.channels.items():
            half = self.rounded(name, max(1, c // 2))  # the count macs() will really keep
            per[name] = (self.base - self.macs({name: half})) / (c - half) if half < c else 0.0
        return self.base - sum(per[n] * c for n, c in self.channels.items()), per

    def cap(self, target: float) -> int:
        """The most MACs allowed at ``target`` x the unpruned MACs (an integer: a fraction computed from counted
        MACs and multiplied back must not fall a hair below the count it came from)."""
        return math.floor(target * self.base + 1e-6)

    def uniform_macs(self, ratio: float) -> float:
        """The MACs fraction left by one keep ratio in every layer (the target ``allocate`` meets by default)."""
        from slimlab.prune.pruner import keep_count

        return self.macs({n: keep_count(c, ratio, self.round_to) for n, c in self.channels.items()}) / self.base

    def floor_count(self, name: str, floor: float) -> int:
        return max(1, math.ceil(floor * self.channels[name]))


# ---- global ------------------------------------------------------------------------------------------------
def normalised(scores: torch.Tensor) -> torch.Tensor:
    """s / mean(s) (Torch-Pruning's default normaliser); a layer whose scores are all zero stays zero."""
    s = scores.double()
    mean = s.mean()
    return s / mean if mean > 0 else s


def global_counts(scores: dict[str, torch.Tensor], floors: dict[str, int], fits: Callable[[dict], bool]) -> dict:
    """Kept counts after removing the lowest normalised scores over all layers, as many as ``fits`` allows.

    Each layer keeps at least ``floors[name]`` channels. ``fits(counts)`` must be monotone (fewer channels
    never stop fitting); the largest kept set that fits is found by bisection on the number removed."""
    removable = []  # (normalised score, layer), the channels above each layer's floor
    for name, s in scores.items():
        ranked = torch.sort(normalised(s), descending=True).values
        removable += [(float(v), name) for v in ranked[floors[name]:]]
    removable.sort(key=lambda t: t[0])

    def counts_after(i: int) -> dict:
        out = {n: len(s) for n, s in scores.items()}
        for _, name in removable[:i]:
            out[name] -= 1
        return out

    if not fits(counts_after(len(removable))):
        raise SlimlabError("--allocation global: even at every layer's floor the model is above the MACs target "
                           "(lower --allocation-floor)")
    lo, hi = 0, len(removable)  # fits(hi) holds; find the smallest count removed that fits
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(counts_after(mid)):
            hi = mid
        else:
            lo = mid + 1
    return counts_after(lo)


# ---- sensitivity ---------------------------------------------------------------------------------------------
def choose(drops: list[list[float]], costs: list[list[int]], budget: int) -> list[int]:
    """Exact multiple-choice knapsack: one option j_l per layer minimising sum drops[l][j_l] subject to
    sum costs[l][j_l] <= budget (non-negative integers). Ties go to the earlier option. Raises if nothing fits."""
    if budget < 0 or sum(min(c) for c in costs) > budget:
        raise SlimlabError("--allocation sensitivity: the MACs target cannot be met at the lowest measured ratios "
                           "(measure lower ratios, or lower --allocation-floor)")
    best = np.zeros(budget + 1)  # best[b]: least total drop of the layers so far within cost b
    picks = []
    for d, c in zip(drops, costs):
        new = np.full(budget + 1, np.inf)
        pick = np.full(budget + 1, -1)
        for j, (dj, cj) in enumerate(zip(d, c)):
            if cj > budget:
                continue
            cand = np.full(budget + 1, np.inf)
            cand[cj:] = best[: budget + 1 - cj] + dj
            better = cand < new
            new[better], pick[better] = cand[better], j
        best = new
        picks.append(pick)
    b, out = budget, []
    for layer in range(len(costs) - 1, -1, -1):
        j = int(picks[layer][b])
        out.append(j)
        b -= costs[layer][j]
    return out[::-1]


def brute_force(drops: list[list[float]], costs: list[list[int]], budget: int) -> float:
    """The least total drop over every combination (for tests of :func:`choose`); inf if none fits."""
    best = math.inf
    for combo in itertools.product(*[range(len(d)) for d in drops]):
        if sum(costs[layer][j] for layer, j in enumerate(combo)) <= budget:
            best = min(best, sum(drops[layer][j] for layer, j in enumerate(combo)))
    return best


def predicted_drop(curve: dict[float, float], ratio: float) -> float:
    """d(ratio), linear between the measured ratios and d(1) = 0, made non-negative and non-decreasing as the
    ratio falls (a negative drop measured on a few images is noise, not a gain that pruning buys); below the
    lowest measured ratio it is not defined (the grid never goes there)."""
    pts = sorted({1.0: 0.0, **{float(r): float(v) for r, v in curve.items()}}.items(), reverse=True)
    ys, running = [], 0.0
    for _, v in pts:
        running = max(running, v)
        ys.append(running)
    return float(np.interp(ratio, [p[0] for p in pts][::-1], ys[::-1]))


def _options(name: str, curve: dict[float, float], shape: Shape, floor: float) -> list[tuple[int, float]]:
    """(kept count, predicted drop) candidates of one layer: from all its channels down to the lowest measured
    ratio, never below the floor, on a grid of GRID_STEP and the measured ratios, rounded as ``shape`` keeps."""
    c = shape.channels[name]
    lowest = max(floor, min(curve))
    ratios = {*(r for r in curve if r >= lowest), *np.arange(1.0, lowest - 1e-9, -GRID_STEP).tolist()}
    least = max(shape.floor_count(name, floor), math.ceil(min(curve) * c - 1e-9))
    counts = sorted({shape.rounded(name, max(least, math.ceil(r * c - 1e-9))) for r in ratios}, reverse=True)
    return [(k, predicted_drop(curve, k / c)) for k in counts]


def sensitivity_counts(profile: dict[str, dict[float, float]], shape: Shape, target: float, floor: float,
                       resolution: int = 4000) -> tuple[dict[str, int], float]:
    """Per-layer kept counts with the least predicted drop at <= ``target`` x the MACs, and that drop.

    The knapsack runs on the linear MACs model with costs rounded up to 1/``resolution`` of the budget (so at
    most one unit per layer is given away). Where the counted MACs differ from the model (layers that feed
    each other), the budget is bisected: the largest that the counted MACs fit."""
    missing = sorted(set(shape.channels) - set(profile))
    if missing:
        raise SlimlabError(f"the sensitivity profile has no entry for {', '.join(missing[:5])}: measure it on "
                           "this model (leave --sensitivity empty)")
    m0, per = shape.linear_costs()
    options = {n: _options(n, profile[n], shape, floor) for n in shape.channels}
    cap = shape.cap(target)
    unit = max(cap - m0, 1.0) / resolution

    def solve(limit: float) -> tuple[dict[str, int], float]:
        names = list(options)
        pick = choose([[d for _, d in options[n]] for n in names],
                      [[math.ceil(per[n] * k / unit - 1e-9) for k, _ in options[n]] for n in names],
                      int((limit - m0) // unit) if limit >= m0 else -1)
        return ({n: options[n][j][0] for n, j in zip(names, pick)},
                sum(options[n][j][1] for n, j in zip(names, pick)))

    best, lo, hi, limit = None, m0, float(cap), float(cap)
    for _ in range(16):
        try:
            counts, drop = solve(limit)
        except SlimlabError:  # nothing fits this budget, nor any lower one
            lo = limit
        else:
            if shape.macs(counts) <= cap:
                best, lo = (counts, drop), limit
                if limit == cap:
                    break  # the linear model held: the exact optimum
            else:
                hi = limit
        if hi - lo < unit:
            break
        limit = (lo + hi) / 2
    if best is None:
        raise SlimlabError("--allocation sensitivity: the MACs target cannot be met at the lowest measured ratios "
                           "(measure lower ratios, or lower --allocation-floor)")
    return best


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> float:
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    hits = sum(int((model(images[s: s + batch].to(dev)).argmax(1).cpu() == labels[s: s + batch].cpu()).sum())
               for s in range(0, len(images), batch))
    model.train(was)
    return hits / max(1, len(images))


def measure_sensitivity(model: nn.Module, crit: Criterion, calib: Calibration, images: torch.Tensor,
                        labels: torch.Tensor, shape: Shape, ratios: tuple[float, ...] = (0.75, 0.5, 0.25),
                        seed: int = 0, progress: Callable[[str], None] | None = None) -> dict:
    """Accuracy drop (points) on ``images`` when each layer alone keeps each ratio, selected by ``crit``
    (one-shot, no fine-tuning, no BatchNorm re-estimation): {"layers": {name: {ratio: drop}}, ...}."""
    from slimlab.prune.pruner import keep_count, prune_model

    base = accuracy(model, images, labels)
    layers: dict[str, dict[float, float]] = {}
    for name, c in shape.channels.items():
        layers[name] = {}
        for r in ratios:
            m = copy.deepcopy(model)
            prune_model(m, crit, r, calib, input_size=shape.input_size, in_chans=shape.in_chans, layers=[name],
                        mode="oneshot", seed=seed, check_surgery=False)  # shape.channels: found checked
            # keyed by the fraction really kept (int(r C) / C), so interpolation sees the true ratios
            layers[name][keep_count(c, r) / c] = round(100 * (base - accuracy(m, images, labels)), 4)
        if progress:
            progress(f"sensitivity {name}: " + ", ".join(f"keep {r:g}: {-d:+.2f}" for r, d in layers[name].items()))
    return {"metric": "accuracy drop in points, one layer pruned alone, no fine-tuning", "images": len(images),
            "base_acc": base, "criterion": crit.name, "layers": layers}


def read_profile(data: dict, source: str) -> dict[str, dict[float, float]]:
    """The ``layers`` of a sensitivity profile (a JSON object as :func:`measure_sensitivity` writes it)."""
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, dict) or not layers:
        raise SlimlabError(f"{source}: not a sensitivity profile (expected {{\"layers\": {{name: {{ratio: drop}}}}}})")
    out = {}
    for name, curve in layers.items():
        try:
            out[name] = {float(r): float(d) for r, d in curve.items()}
        except (AttributeError, TypeError, ValueError):
            raise SlimlabError(f"{source}: layer {name}: expected {{ratio: drop}} numbers") from None
        if not out[name] or any(not 0 < r < 1 or not math.isfinite(d) for r, d in out[name].items()):
            raise SlimlabError(f"{source}: layer {name}: ratios must be in (0, 1) and drops finite")
    return out


def layer_scores(model: nn.Module, crit: Criterion, calib: Calibration, shape: Shape,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """The criterion's importance of every channel of every pruned layer, from the unpruned model."""
    dg = build_graph(model, shape.input_size, shape.in_chans)
    plan = find_prunable(model, dg, shape.layers, shape.ignored)
    stats = calib.stats(model, plan, crit.needs) if crit.needs else [LayerStats() for _ in plan]
    g = torch.Generator().manual_seed(seed)
    return {p.name: crit.scores(p, st, g) for p, st in zip(plan, stats)}


def allocate(mode: str, model: nn.Module, crit: Criterion, calib: Calibration, shape: Shape, target: float, *,
             floor: float = 0.1, profile: dict | None = None, seed: int = 0) -> tuple[dict[str, int], dict]:
    """Per-layer kept counts at <= ``target`` x the MACs (``global`` or ``sensitivity``), and what was decided."""
    if not 0 < floor <= 1:
        raise SlimlabError(f"--allocation-floor must be in (0, 1], got {floor}")
    floors = {n: shape.floor_count(n, floor) for n in shape.channels}
    if mode == "global":
        scores = layer_scores(model, crit, calib, shape, seed)
        cap = shape.cap(target)
        counts = global_counts(scores, floors, lambda k: shape.macs(k) <= cap)
        info: dict = {}
    elif mode == "sensitivity":
        if profile is None:
            raise SlimlabError("--allocation sensitivity needs a sensitivity profile")
        counts, drop = sensitivity_counts(profile, shape, target, floor)
        info = {"predicted_drop": drop}
    else:
        raise SlimlabError(f"unknown allocation '{mode}' ({', '.join(ALLOCATIONS)})")
    counts = {n: shape.rounded(n, k) for n, k in counts.items()}
    info.update(mode=mode, floor=floor, target_macs=target, macs_ratio=shape.macs(counts) / shape.base,
                counts=counts)
    return counts, info
