"""``slimlab train``: train a model (any loss, noise, initialisation) into a run directory; resumable."""

from __future__ import annotations

from pathlib import Path

import torch

from slimlab.config import TrainConfig, dump_yaml, from_dict, load_yaml, parse_set, to_dict
from slimlab.engine import Dist, fit, load_checkpoint, setup, write_summary
from slimlab.errors import SlimlabError
from slimlab.io import atomic_write_json
from slimlab.losses import build_objective
from slimlab.models.io import resize_to_state_dict
from slimlab.profile import count_macs, count_params
from slimlab.tasks.common import (
    build_model,
    data_meta,
    default_out,
    make_loaders,
    plot_curves,
    prepare_data,
    transition_estimator,
)

Config = TrainConfig


def train(cfg: TrainConfig, resume: dict | None = None, ctx: Dist | None = None) -> dict:
    """Train ``cfg`` into its run directory and return the summary (also written as summary.json)."""
    ctx = ctx or setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out or default_out(cfg))
    p = prepare_data(cfg)
    if len(p.train_idx) == 0:
        raise SlimlabError("no training images left after the subset options")
    transition = None if p.transition is None else torch.tensor(p.transition, dtype=torch.float32)
    objective = build_objective(cfg.loss, p.ds.num_classes, kwargs=cfg.loss_kwargs, label_smoothing=cfg.label_smoothing,
                                targets=p.targets, epochs=cfg.epochs, lr=cfg.lr, transition=transition,
                                estimate_transition_from=transition_estimator(p, ctx))
    model, meta = build_model(cfg, objective.num_outputs or p.ds.num_classes)
    if resume is not None and resume.get("pruned"):
        resize_to_state_dict(model, resume["state_dict"])
        meta["pruned"] = True
    cfg.out = str(out)
    meta.update(data=data_meta(p.ds), config=to_dict(cfg))
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
        dump_yaml(cfg, out / "config.yaml")
        if p.noise:
            atomic_write_json(out / "noise.json", p.noise)
    loaders = make_loaders(cfg, p, ctx)
    params, macs = count_params(model), count_macs(model, p.ds.image_size)
    summary = fit(model, loaders, objective, cfg, out, ctx, meta=meta, resume=resume, track_test=cfg.track_test)
    summary.update(params=params, macs=macs, model=cfg.model, data=cfg.data, loss=cfg.loss,
                   train_images=len(p.train_idx), num_classes=p.ds.num_classes, image_size=p.ds.image_size)
    if p.noise:
        summary["noise"] = {k: v for k, v in p.noise.items() if k not in ("flipped", "transition")}
    if ctx.main:
        write_summary(out, summary)
        plot_curves(out)
    summary["out"] = str(out)
    summary["rank"] = ctx.rank
    return summary


def resume(run_dir: str | Path, sets: list[str] | None = None) -> dict:
    """Continue a killed run from ``run_dir/last.pt`` with its own config.yaml."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise SlimlabError(f"not a run directory (no config.yaml): {run_dir}")
    raw = load_yaml(run_dir / "config.yaml")
    raw.update(parse_set(sets or []))
    if not any(s.startswith("stop_after=") for s in sets or []):
        raw["stop_after"] = 0  # a resumed run goes to the end unless told otherwise
    cfg = from_dict(TrainConfig, raw, str(run_dir / "config.yaml"))
    cfg.out = str(run_dir)
    last = run_dir / "last.pt"
    if not last.is_file():
        return train(cfg)  # killed before the first epoch ended: start over
    ck = load_checkpoint(last)
    if ck["epoch"] >= cfg.epochs:
        raise SlimlabError(f"{run_dir} already finished its {cfg.epochs} epochs (raise them with --set epochs=N)")
    return train(cfg, resume=ck)


run = train
