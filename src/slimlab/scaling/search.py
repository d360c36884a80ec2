"""EfficientNet's two steps (Tan & Le 2019, Sec. 3.3).

Step 1 (``grid_search``): fix phi = 1 and grid-search alpha, beta, gamma >= 1 whose *measured* MACs
ratio (after channel rounding and ceil'd repeats) is within a tolerance of the budget (2 in the
paper), training each candidate briefly on a proxy data set; pick the most accurate.
Step 2 (``scale``): fix alpha, beta, gamma and scale the base by phi.

Any registry model whose builder takes ``width_mult`` and ``depth_mult`` can be scaled (the
EfficientNet and MobileNet families, the CIFAR ResNets); resolution scaling resizes the input.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.models import create_model, get_entry
from slimlab.profile import count_macs, count_params
from slimlab.scaling.compound import compound, flops_factor


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
    import inspect

    params = inspect.signature(entry.fn).parameters
    if "width_mult" not in params or "depth_mult" not in params:
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
    return out


def measured_ratio(base: str, alpha: float, beta: float, gamma: float, num_classes: int, base_resolution: int,
                   base_macs: int, **kwargs) -> tuple[float, Scaled]:
    model, s = build_scaled(base, 1.0, alpha, beta, gamma, num_classes, base_resolution, **kwargs)
    return count_macs(model, s.resolution) / base_macs, s


def grid_search(base: str, data: str, budget: float = 2.0, tolerance: float = 0.1, step: float = 0.05,
                epochs: int = 2, train_subset: int = 0, max_candidates: int = 8, base_resolution: int | None = None,
                model_kwargs: dict | None = None, out: str | Path = "runs/scale-search", seed: int = 0,
                lr: float = 0.05, batch_size: int = 128, progress: str = "auto") -> dict:
    """Step 1: train every admissible (alpha, beta, gamma) briefly on ``data``; return the table and the winner."""
    from slimlab import api
    from slimlab.config import TrainConfig

    kwargs = dict(model_kwargs or {})
    out = Path(out)
    probe_ds = api.prepare_data(TrainConfig(data=data, train_subset=train_subset)).ds
    base_res = base_resolution or probe_ds.image_size
    nc = probe_ds.num_classes
    base_macs = count_macs(create_model(base, nc, **kwargs), base_res)
    admissible = []
    for a, b, g in candidates(budget, step):
        ratio, s = measured_ratio(base, a, b, g, nc, base_res, base_macs, **kwargs)
        if abs(ratio - budget) <= tolerance * budget:
            admissible.append((a, b, g, ratio, s))
    if not admissible:
        raise SlimlabError(f"no (alpha, beta, gamma) on the grid reaches {budget}x MACs within {tolerance:.0%}")
    if len(admissible) > max_candidates:  # spread the trained candidates over the admissible set
        keep = np.linspace(0, len(admissible) - 1, max_candidates).round().astype(int)
        admissible = [admissible[i] for i in sorted(set(keep.tolist()))]
    rows = []
    common = TrainConfig(data=data, train_subset=train_subset, epochs=epochs, lr=lr, batch_size=batch_size,
                         seed=seed, progress=progress, model=base)
    base_run = api.train(dataclasses.replace(common, model_kwargs=kwargs, image_size=base_res,
                                             out=str(out / "base")))
    rows.append({"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "macs_ratio": 1.0, "macs": base_macs,
                 "params": base_run["params"], "resolution": base_res, "test_acc": base_run["test_acc"],
                 "val_acc": base_run["best_val_acc"], "base": True})
    for a, b, g, ratio, s in admissible:
        name = f"a{a:g}-b{b:g}-g{g:g}"
        r = api.train(dataclasses.replace(common, model_kwargs={**kwargs, **s.model_kwargs}, image_size=s.resolution,
                                          out=str(out / name)))
        rows.append({"alpha": a, "beta": b, "gamma": g, "macs_ratio": ratio, "macs": r["macs"], "params": r["params"],
                     "resolution": s.resolution, "test_acc": r["test_acc"], "val_acc": r["best_val_acc"],
                     "base": False})
    cands = [r for r in rows if not r["base"]]
    best = max(cands, key=lambda r: (r["val_acc"] or 0, -abs(r["macs_ratio"] - budget)))
    result = {"base": base, "budget": budget, "tolerance": tolerance, "epochs": epochs, "data": data, "rows": rows,
              "chosen": {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"]}}
    _write_search(out, result)
    return result


def _write_search(out: Path, result: dict) -> None:
    from slimlab.engine import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "search.json", result)
    lines = ["| alpha | beta | gamma | measured MACs ratio | params | resolution | val acc (%) | test acc (%) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        mark = " (base)" if r["base"] else (" **chosen**" if (r["alpha"], r["beta"], r["gamma"]) ==
                                            tuple(result["chosen"].values()) else "")
        lines.append(f"| {r['alpha']:g} | {r['beta']:g} | {r['gamma']:g}{mark} | {r['macs_ratio']:.3f} | "
                     f"{r['params'] / 1e6:.3f}M | {r['resolution']} | {100 * (r['val_acc'] or 0):.2f} | "
                     f"{100 * r['test_acc']:.2f} |")
    atomic_write_text(out / "search.md", "\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in result["rows"]:
        ax.scatter(r["macs"] / 1e6, 100 * r["test_acc"], color="gray" if r["base"] else "#3b6fb6")
        ax.annotate("base" if r["base"] else f"{r['alpha']:g}/{r['beta']:g}/{r['gamma']:g}",
                    (r["macs"] / 1e6, 100 * r["test_acc"]), fontsize=6)
    ax.set(xlabel="MACs (M)", ylabel="test accuracy (%)", title=f"{result['base']}: compound-scaling grid (phi=1)")
    fig.tight_layout()
    fig.savefig(out / "search.png", dpi=100)
    plt.close(fig)


def describe(base: str, phi: float, alpha: float, beta: float, gamma: float, num_classes: int = 1000,
             base_resolution: int | None = None) -> dict:
    model, s = build_scaled(base, phi, alpha, beta, gamma, num_classes, base_resolution)
    base_model = create_model(base, num_classes)
    res0 = base_resolution or get_entry(base).input_size
    macs, macs0 = count_macs(model, s.resolution), count_macs(base_model, res0)
    return {"base": base, "phi": phi, "alpha": alpha, "beta": beta, "gamma": gamma, "model_kwargs": s.model_kwargs,
            "resolution": s.resolution, "params": count_params(model), "macs": macs, "macs_ratio": macs / macs0,
            "nominal_ratio": flops_factor(alpha, beta, gamma) ** phi, "log2_ratio": math.log2(macs / macs0)}
