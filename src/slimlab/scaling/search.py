"""EfficientNet's two steps (Tan & Le 2019, Sec. 3.3).

Step 1 (``admissible`` here, trained by ``slimlab scale search``): fix phi = 1 and grid-search alpha,
beta, gamma >= 1 whose *measured* MACs ratio (after channel rounding and ceil'd repeats) is within a
tolerance of the budget (2 in the paper), train each candidate briefly on a proxy data set and pick
the most accurate. The paper's point (1.2, 1.1, 1.15) is always trained, whatever it measures
(repeats round up, so on EfficientNet-B0 it measures 2.66x at 32 px), and marked as such.
Step 2 (``scale``): fix alpha, beta, gamma and scale the base by phi.

Any registry model whose builder takes ``width_mult`` and ``depth_mult`` can be scaled (the
EfficientNet and MobileNet families, the CIFAR ResNets); resolution scaling resizes the input.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.models import create_model, get_entry
from slimlab.models.registry import builder_takes
from slimlab.profile import count_macs, count_params
from slimlab.scaling.compound import compound, flops_factor

PAPER_POINT = (1.2, 1.1, 1.15)  # the paper's (alpha, beta, gamma): on the default grid (step 0.05), and trained


@dataclass
class Scaled:
    model_kwargs: dict
    resolution: int
    depth: float
    width: float


def scale(base: str, phi: float, alpha: float, beta: float, gamma: float, base_resolution: int | None = None,
          base_kwargs: dict | None = None) -> Scaled:
    """Multipliers and input size of ``base`` scaled by phi (depth alpha^phi, width beta^phi, resolution gamma^phi).

    The base's own multipliers (registry defaults, overridden by ``base_kwargs``) are multiplied."""
    entry = get_entry(base)
    own = {**entry.defaults, **(base_kwargs or {})}
    if not builder_takes(base, "width_mult", "depth_mult"):
        raise SlimlabError(f"model '{base}' cannot be compound-scaled (its builder takes no width_mult/depth_mult)")
    d, w, r = compound(phi, alpha, beta, gamma)
    kw = {"width_mult": own.get("width_mult", 1.0) * w, "depth_mult": own.get("depth_mult", 1.0) * d}
    res = max(8, int(round((base_resolution or entry.input_size) * r)))
    return Scaled(kw, res, d, w)


def build_scaled(base: str, phi: float, alpha: float, beta: float, gamma: float, num_classes: int = 10,
                 base_resolution: int | None = None, **kwargs) -> tuple[nn.Module, Scaled]:
    s = scale(base, phi, alpha, beta, gamma, base_resolution, kwargs)
    return create_model(base, num_classes, **{**kwargs, **s.model_kwargs}), s


def candidates(budget: float = 2.0, step: float = 0.05, max_factor: float = 2.0) -> list[tuple[float, float, float]]:
    """The grid: alpha, beta, gamma in {1, 1+step, ...} whose nominal alpha*beta^2*gamma^2 is near the budget."""
    vals = np.round(np.arange(1.0, max_factor + 1e-9, step), 4)
    out = []
    for a, b, g in itertools.product(vals, vals, vals):
        if abs(flops_factor(a, b, g) - budget) <= 0.15 * budget:
            out.append((float(a), float(b), float(g)))
    if PAPER_POINT not in out and abs(flops_factor(*PAPER_POINT) - budget) <= 0.15 * budget:
        out.append(PAPER_POINT)  # the paper's point is always a candidate, on the grid or not
    return out


def is_paper_point(alpha: float, beta: float, gamma: float) -> bool:
    return bool(np.allclose((alpha, beta, gamma), PAPER_POINT))


def in_band(ratio: float, budget: float, tolerance: float) -> bool:
    """A measured MACs ratio within ``tolerance`` (relative) of ``budget``."""
    return abs(ratio - budget) <= tolerance * budget


def measured_ratio(base: str, alpha: float, beta: float, gamma: float, num_classes: int, base_resolution: int,
                   base_macs: int, **kwargs) -> tuple[float, Scaled]:
    model, s = build_scaled(base, 1.0, alpha, beta, gamma, num_classes, base_resolution, **kwargs)
    return count_macs(model, s.resolution) / base_macs, s


def admissible(base: str, budget: float, tolerance: float, step: float, num_classes: int, base_resolution: int,
               max_candidates: int = 8, **kwargs) -> list[tuple[float, float, float, float, Scaled]]:
    """Grid points whose *measured* MACs ratio is within ``tolerance`` of ``budget``, spread to at most
    ``max_candidates``, and the paper's point whatever it measures (one more when it measures outside the band),
    whenever ``candidates`` holds it (budgets within 15% of its nominal 1.92): (alpha, beta, gamma, measured ratio,
    scaled multipliers) each. The search trains the paper's point but chooses only among points inside the band
    (``tasks.scale.choose``)."""
    base_macs = count_macs(create_model(base, num_classes, **kwargs), base_resolution)
    found, paper = [], []
    for a, b, g in candidates(budget, step):
        ratio, s = measured_ratio(base, a, b, g, num_classes, base_resolution, base_macs, **kwargs)
        if in_band(ratio, budget, tolerance):
            found.append((a, b, g, ratio, s))
        elif is_paper_point(a, b, g):
            paper.append((a, b, g, ratio, s))
    if not found:
        raise SlimlabError(f"no (alpha, beta, gamma) on the grid reaches {budget}x MACs within {tolerance:.0%}")
    if len(found) > max_candidates:  # spread the trained candidates over the band, the paper's point kept
        keep = set(np.linspace(0, len(found) - 1, max_candidates).round().astype(int).tolist())
        inside = [i for i, f in enumerate(found) if is_paper_point(*f[:3])]
        if inside and inside[0] not in keep:
            keep.discard(min(keep, key=lambda i: abs(i - inside[0])))
            keep.add(inside[0])
        found = [found[i] for i in sorted(keep)]
    return found + paper  # outside the band, the paper's point is trained beside the others, never in their place


def describe(base: str, phi: float, alpha: float, beta: float, gamma: float, num_classes: int = 1000,
             base_resolution: int | None = None, **kwargs) -> dict:
    """Step 2's model: its arguments (the base's own ``kwargs`` with the scaled multipliers), input size,
    parameters and measured MACs against the base's."""
    model, s = build_scaled(base, phi, alpha, beta, gamma, num_classes, base_resolution, **kwargs)
    base_model = create_model(base, num_classes, **kwargs)
    res0 = base_resolution or get_entry(base).input_size
    macs, macs0 = count_macs(model, s.resolution), count_macs(base_model, res0)
    return {"base": base, "phi": phi, "alpha": alpha, "beta": beta, "gamma": gamma,
            "model_kwargs": {**kwargs, **s.model_kwargs},
            "resolution": s.resolution, "params": count_params(model), "macs": macs, "macs_ratio": macs / macs0,
            "nominal_ratio": flops_factor(alpha, beta, gamma) ** phi, "log2_ratio": math.log2(macs / macs0)}
