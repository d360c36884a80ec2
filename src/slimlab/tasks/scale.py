"""``slimlab scale``: EfficientNet compound scaling, step 1 (grid search) or step 2 (apply)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from slimlab.config import TrainConfig, load_yaml, to_dict
from slimlab.engine import load_checkpoint
from slimlab.io import atomic_write_json, atomic_write_text, pyplot, save_figure
from slimlab.scaling.search import admissible, describe, in_band, is_paper_point
from slimlab.tasks.common import prepare_data, refuse_foreign_file
from slimlab.tasks.train import config_difference, train


@dataclass
class ScaleConfig:
    POSITIONAL = ("action",)
    CHOICES = {"action": ("search", "apply")}
    ALIASES = {"step": "grid_step"}
    RANGES = {"budget": "> 1", "tolerance": "(0, 1)", "grid_step": "(0, 1]", "max_candidates": ">= 1",
              "epochs": "[1, 100000]", "train_subset": ">= 0", "lr": "> 0", "batch_size": ">= 1",
              "seed": "[0, 4294967295]",
              "phi": "[0, 16]", "alpha": "[1, 8]", "beta": "[1, 8]", "gamma": "[1, 8]", "num_classes": "[1, 100000]",
              "input_size": "0 or [8, 4096]"}

    action: str = "apply"  # search (step 1: alpha, beta, gamma) | apply (step 2: the scaled model)
    base: str = "efficientnet_b0"
    data: str = "digits"  # proxy data set for the search
    root: str = "~/.cache/slimlab/data"  # where cifar10/cifar100 live (torchvision layout)
    download: bool = False  # let torchvision download cifar10/cifar100 into --root
    budget: float = 2.0  # MACs ratio at phi=1 (the paper: 2)
    tolerance: float = 0.1  # relative tolerance on the measured MACs ratio
    grid_step: float = 0.05
    max_candidates: int = 8
    epochs: int = 2  # training epochs per candidate
    train_subset: int = 0
    lr: float = 0.05
    batch_size: int = 128
    model_kwargs: dict = field(default_factory=dict)  # the base's own arguments (e.g. cifar_stem)
    seed: int = 0
    phi: float = 1.0
    alpha: float = 1.2
    beta: float = 1.1
    gamma: float = 1.15
    num_classes: int = 1000
    input_size: int = 0  # base resolution (default: the model's / the data's)
    progress: str = "auto"
    out: str = ""  # search: default runs/scale-search-<base>; a search run again reads its finished candidates back
    overwrite: bool = False  # search: replace candidate runs made with other options


Config = ScaleConfig


def run(cfg: ScaleConfig) -> dict:
    """``slimlab scale``: the grid search for (alpha, beta, gamma), or a base model scaled by phi."""
    return grid_search(cfg) if cfg.action == "search" else apply(cfg)


MODEL_YAML_KEYS = {"model", "model_kwargs", "image_size"}  # what scale apply writes, and nothing else


def apply(cfg: ScaleConfig) -> dict:
    """Step 2: the base scaled by phi; with ``out``, its model arguments as ``model.yaml``."""
    import yaml

    if cfg.out:
        refuse_foreign_file(Path(cfg.out) / "model.yaml", lambda t: set(yaml.safe_load(t)) == MODEL_YAML_KEYS,
                            "scale apply")
    r = describe(cfg.base, cfg.phi, cfg.alpha, cfg.beta, cfg.gamma, cfg.num_classes, cfg.input_size or None,
                 **cfg.model_kwargs)
    if cfg.out:
        atomic_write_text(Path(cfg.out) / "model.yaml", yaml.safe_dump(
            {"model": cfg.base, "model_kwargs": r["model_kwargs"], "image_size": r["resolution"]}))
    return r


def grid_search(cfg: ScaleConfig) -> dict:
    """Step 1: train every admissible (alpha, beta, gamma) briefly on ``data``; return the table and the winner."""
    out = Path(cfg.out or f"runs/scale-search-{cfg.base.replace(':', '-')}").expanduser()
    _refuse_foreign_results(out)
    probe_ds = prepare_data(TrainConfig(data=cfg.data, root=cfg.root, download=cfg.download,
                                        train_subset=cfg.train_subset)).ds
    base_res = cfg.input_size or probe_ds.image_size
    kwargs = dict(cfg.model_kwargs)
    points = admissible(cfg.base, cfg.budget, cfg.tolerance, cfg.grid_step, probe_ds.num_classes, base_res,
                        cfg.max_candidates, **kwargs)
    common = TrainConfig(data=cfg.data, root=cfg.root, download=cfg.download, train_subset=cfg.train_subset,
                         epochs=cfg.epochs, lr=cfg.lr,
                         batch_size=cfg.batch_size, seed=cfg.seed, progress=cfg.progress, model=cfg.base,
                         overwrite=cfg.overwrite)
    base_run = train_once(dataclasses.replace(common, model_kwargs=kwargs, image_size=base_res,
                                              out=str(out / "base")))
    rows = [_row(1.0, 1.0, 1.0, 1.0, base_res, base_run, True)]
    for a, b, g, ratio, s in points:
        r = train_once(dataclasses.replace(common, model_kwargs={**kwargs, **s.model_kwargs}, image_size=s.resolution,
                                           out=str(out / f"a{a:g}-b{b:g}-g{g:g}")))
        rows.append(_row(a, b, g, ratio, s.resolution, r, False))
    best = choose(rows[1:], cfg.budget, cfg.tolerance)
    result = {"base": cfg.base, "budget": cfg.budget, "tolerance": cfg.tolerance, "epochs": cfg.epochs,
              "data": cfg.data, "rows": rows,
              "chosen": {"alpha": best["alpha"], "beta": best["beta"], "gamma": best["gamma"]}}
    write_search(out, result)
    return result


SEARCH_KEYS = {"base", "budget", "rows", "chosen"}  # what search.json holds, among others


def _refuse_foreign_results(out: Path) -> None:
    """One line, before any training, when ``out`` holds a search.json, search.md or search.png that an earlier
    search did not write (``--out .`` in a user's project)."""
    refuse_foreign_file(out / "search.json", lambda t: SEARCH_KEYS <= set(json.loads(t)), "scale search")
    refuse_foreign_file(out / "search.md", lambda t: t.startswith("| alpha | beta | gamma |"), "scale search")
    if not (out / "search.json").is_file():  # the plot is ours only beside our search.json
        refuse_foreign_file(out / "search.png", lambda _: False, "scale search")


def train_once(tcfg: TrainConfig) -> dict:
    """A candidate's run: read back when its directory holds it finished with these options, continued from its
    ``last.pt`` when it was cut short, trained otherwise (a search run again, or interrupted, redoes nothing)."""
    d = Path(tcfg.out)
    old = load_yaml(d / "config.yaml") if (d / "config.yaml").is_file() else None
    same = old is not None and config_difference(old, to_dict(tcfg)) is None and old.get("epochs") == tcfg.epochs
    if same and (d / "summary.json").is_file():
        return json.loads((d / "summary.json").read_text())
    if same and (d / "last.pt").is_file():
        return train(tcfg, resume=load_checkpoint(d / "last.pt"))
    if same:  # killed before its first checkpoint: this very candidate starts over
        return train(dataclasses.replace(tcfg, overwrite=True))
    return train(tcfg)


def choose(rows: list[dict], budget: float, tolerance: float) -> dict:
    """The best validation accuracy among the rows whose *measured* MACs are within ``tolerance`` of ``budget``
    (ties: the closest to it). The paper's point is trained whatever it measures, but a point outside the band
    spends more MACs than the others and does not compete; only when no row is in the band do all compete."""
    eligible = [r for r in rows if in_band(r["macs_ratio"], budget, tolerance)] or rows
    return max(eligible, key=lambda r: (r["val_acc"] or 0, -abs(r["macs_ratio"] - budget)))


def _row(a: float, b: float, g: float, ratio: float, res: int, run: dict, base: bool) -> dict:
    return {"alpha": a, "beta": b, "gamma": g, "macs_ratio": ratio, "macs": run["macs"], "params": run["params"],
            "resolution": res, "test_acc": run["test_acc"], "val_acc": run["best_val_acc"], "base": base}


def write_search(out: Path, result: dict) -> None:
    """search.json, search.md (the table) and search.png (accuracy against MACs)."""
    atomic_write_json(out / "search.json", result)
    lines = ["| alpha | beta | gamma | measured MACs ratio | params | resolution | val acc (%) | test acc (%) |",
             "|---|---|---|---|---|---|---|---|"]
    chosen = tuple(result["chosen"].values())
    for r in result["rows"]:
        mark = " (base)" if r["base"] else (" **chosen**" if (r["alpha"], r["beta"], r["gamma"]) == chosen else "")
        if not r["base"] and is_paper_point(r["alpha"], r["beta"], r["gamma"]):
            mark += " (the paper's point)"
        if not r["base"] and not in_band(r["macs_ratio"], result["budget"], result["tolerance"]):
            mark += " (outside the MACs band: shown, not chosen)"
        lines.append(f"| {r['alpha']:g} | {r['beta']:g} | {r['gamma']:g}{mark} | {r['macs_ratio']:.3f} | "
                     f"{r['params'] / 1e6:.3f}M | {r['resolution']} | {100 * (r['val_acc'] or 0):.2f} | "
                     f"{100 * r['test_acc']:.2f} |")
    atomic_write_text(out / "search.md", "\n".join(lines) + "\n")
    fig, ax = pyplot().subplots(figsize=(5, 3.5))
    for r in result["rows"]:
        ax.scatter(r["macs"] / 1e6, 100 * r["test_acc"], color="gray" if r["base"] else "#3b6fb6")
        ax.annotate("base" if r["base"] else f"{r['alpha']:g}/{r['beta']:g}/{r['gamma']:g}",
                    (r["macs"] / 1e6, 100 * r["test_acc"]), fontsize=6)
    ax.set(xlabel="MACs (M)", ylabel="test accuracy (%)", title=f"{result['base']}: compound-scaling grid (phi=1)")
    fig.tight_layout()
    save_figure(fig, out / "search.png")
