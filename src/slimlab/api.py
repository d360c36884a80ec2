"""The Python API behind every CLI command: ``train``, ``resume``, ``evaluate_checkpoint``, ``profile``.

``train(cfg)`` builds data (with optional synthetic noise and subsets), the model, the objective and
the loaders, then runs :func:`slimlab.engine.fit` into a run directory.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimlab import data as D
from slimlab.config import TrainConfig, dump_yaml, from_dict, load_yaml, to_dict
from slimlab.engine import Dist, Loaders, fit, load_checkpoint, setup, write_summary
from slimlab.engine.checkpoint import atomic_write_json
from slimlab.errors import SlimlabError
from slimlab.losses import build_objective
from slimlab.models import create_model
from slimlab.models.io import load_matching, model_from_checkpoint
from slimlab.profile import count_macs, count_params


@dataclass
class Prepared:
    """Everything ``train`` assembles before the loop; reused by pruning, probing and the pipeline."""

    ds: D.DataSet
    targets: torch.Tensor  # training targets used for learning (noisy when noise was injected)
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    noise: dict = field(default_factory=dict)
    transition: np.ndarray | None = None


def default_out(cfg: TrainConfig) -> str:
    name = cfg.data.split(":", 1)[-1].rstrip("/").split("/")[-1]
    return f"runs/{name}-{cfg.model.replace(':', '_')}"


def prepare_data(cfg: TrainConfig, ds: D.DataSet | None = None) -> Prepared:
    """Data set, (noisy) targets and the train/validation index split of ``cfg``."""
    ds = ds or D.build(cfg.data, cfg.root, cfg.download, cfg.image_size)
    clean = ds.train.targets
    targets, noise, transition = clean.clone(), {}, None
    if cfg.noise:
        from slimlab.noise import corrupt, load_matrix, parse_noise

        kind, rate, path = parse_noise(cfg.noise)
        matrix = load_matrix(path) if path else None
        targets, transition = corrupt(clean, kind, rate if rate is not None else 0.0, ds.num_classes,
                                      cfg.noise_seed, cfg.noise_mode, cfg.noise_exclude_true, matrix=matrix)
        flipped = torch.nonzero(targets != clean).flatten()
        noise = {"spec": cfg.noise, "kind": kind, "rate": rate, "mode": cfg.noise_mode,
                 "exclude_true": cfg.noise_exclude_true, "seed": cfg.noise_seed,
                 "realised_rate": len(flipped) / max(len(clean), 1), "flipped": flipped.tolist(),
                 "transition": transition.tolist()}
    if not 0 <= cfg.val_fraction < 1:
        raise SlimlabError(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    train_idx, val_idx = D.stratified_split(targets, cfg.val_fraction, seed=cfg.seed)
    if cfg.clean_subset:
        # Sun et al. 2017's clean fine-tuning: K images per class with their *true* labels
        sub = D.stratified_subset(clean[train_idx], per_class=cfg.clean_subset, seed=cfg.seed)
        # the targets become the true labels everywhere, so validation also scores against clean labels
        train_idx, targets = train_idx[sub], clean.clone()
    if cfg.labels_per_class:
        train_idx = train_idx[D.stratified_subset(targets[train_idx], per_class=cfg.labels_per_class, seed=cfg.seed)]
    if cfg.train_subset:
        train_idx = train_idx[D.stratified_subset(targets[train_idx], total=cfg.train_subset, seed=cfg.seed)]
    return Prepared(ds, targets, train_idx, val_idx, noise, transition)


def make_loaders(cfg: TrainConfig, p: Prepared, ctx: Dist, shuffle: bool = True) -> Loaders:
    ds = p.ds
    common = {"mean": ds.mean, "std": ds.std, "device": ctx.device,
              "channels_last": cfg.channels_last}
    bs = cfg.batch_size
    if ctx.world > 1 and bs % ctx.world:
        raise SlimlabError(f"batch_size {bs} must be divisible by the {ctx.world} processes")
    train = D.BatchLoader(ds.train, p.train_idx, bs, shuffle=shuffle, augment=cfg.augment, pad=ds.pad, flip=ds.flip,
                          drop_last=len(p.train_idx) > bs, seed=cfg.seed, rank=ctx.rank, world=ctx.world,
                          targets=p.targets, **common)
    eval_bs = -(-max(bs, 256) // ctx.world) * ctx.world  # a multiple of the process count
    val = (D.BatchLoader(ds.train, p.val_idx, eval_bs, rank=ctx.rank, world=ctx.world, targets=p.targets, **common)
           if len(p.val_idx) else None)
    test = D.BatchLoader(ds.test, torch.arange(len(ds.test)), eval_bs, rank=ctx.rank, world=ctx.world, **common)
    return Loaders(train, val, test)


def build_model(cfg: TrainConfig, num_classes: int) -> tuple[torch.nn.Module, dict]:
    """The model of ``cfg``, initialised from ``cfg.init`` when given; returns (model, checkpoint meta)."""
    torch.manual_seed(cfg.seed)
    meta = {"model_name": cfg.model, "model_kwargs": dict(cfg.model_kwargs), "num_classes": num_classes}
    if cfg.init:
        ck = load_checkpoint(cfg.init)
        if ck.get("pruned"):  # fine-tune a pruned model: its architecture comes from the checkpoint
            if ck["model_name"] != cfg.model:
                raise SlimlabError(f"--init {cfg.init} is a pruned {ck['model_name']}, not {cfg.model}")
            model = model_from_checkpoint({**ck, "num_classes": ck["num_classes"]})
            if ck["num_classes"] != num_classes:
                from slimlab.models.registry import _replace_head

                _replace_head(model, num_classes)
            meta.update(pruned=True, model_kwargs=ck.get("model_kwargs", {}))
            return model, meta
        model = create_model(cfg.model, num_classes, **cfg.model_kwargs)
        if hasattr(model, "load_trunk"):  # a probe on frozen features: the checkpoint is its trunk
            copied, total = model.load_trunk(ck["state_dict"]), len(ck["state_dict"])
        else:
            copied, total = load_matching(model, ck["state_dict"])
        if copied == 0:
            raise SlimlabError(f"--init {cfg.init}: no tensor matches {cfg.model}'s architecture")
        meta["init"] = {"from": cfg.init, "tensors_copied": copied, "tensors_total": total}
        return model, meta
    return create_model(cfg.model, num_classes, **cfg.model_kwargs), meta


def data_meta(ds: D.DataSet) -> dict:
    return {"name": ds.name, "classes": list(ds.classes), "mean": list(ds.mean), "std": list(ds.std),
            "image_size": ds.image_size}


def _transition_for(cfg: TrainConfig, p: Prepared, ctx: Dist) -> Any:
    if cfg.loss != "forward":
        return None
    kw = cfg.loss_kwargs
    if "matrix" in kw:
        return torch.tensor(kw["matrix"], dtype=torch.float32)
    if "estimate_from" in kw:
        from slimlab.engine import predict
        from slimlab.losses import estimate_transition

        model = model_from_checkpoint(load_checkpoint(kw["estimate_from"])).to(ctx.device)
        loader = D.BatchLoader(p.ds.train, p.train_idx, 512, mean=p.ds.mean, std=p.ds.std, device=ctx.device)
        probs, _ = predict(model, loader)
        return torch.tensor(estimate_transition(probs), dtype=torch.float32)
    return None if p.transition is None else torch.tensor(p.transition, dtype=torch.float32)


def train(cfg: TrainConfig, resume: dict | None = None, ctx: Dist | None = None) -> dict:
    """Train ``cfg`` into its run directory and return the summary (also written as summary.json)."""
    ctx = ctx or setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out or default_out(cfg))
    p = prepare_data(cfg)
    if len(p.train_idx) == 0:
        raise SlimlabError("no training images left after the subset options")
    loss_kwargs = {k: v for k, v in cfg.loss_kwargs.items() if k not in ("matrix", "estimate_from")}
    objective = build_objective(cfg.loss, p.ds.num_classes, kwargs=loss_kwargs, label_smoothing=cfg.label_smoothing,
                                targets=p.targets, epochs=cfg.epochs, lr=cfg.lr,
                                transition=_transition_for(cfg, p, ctx))
    model, meta = build_model(cfg, getattr(objective, "num_outputs", None) or p.ds.num_classes)
    if resume is not None and resume.get("pruned"):
        from slimlab.models.io import resize_to_state_dict

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
    params = count_params(model)
    macs = count_macs(model, p.ds.image_size)
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
    from slimlab.config import parse_set

    raw.update(parse_set(sets or []))
    raw.setdefault("stop_after", 0)
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


def build_eval_loader(ckpt: dict, data: str | None, root: str, download: bool, batch_size: int = 256,
                      device: torch.device | str = "cpu") -> tuple[Any, D.DataSet]:
    dmeta = ckpt.get("data", {})
    spec = data or ckpt.get("config", {}).get("data")
    if not spec:
        raise SlimlabError("give --data: the checkpoint does not name its data set")
    ds = D.build(spec, root, download, int(dmeta.get("image_size", 0)) if spec != "digits" else 0)
    mean, std = tuple(dmeta.get("mean", ds.mean)), tuple(dmeta.get("std", ds.std))
    return D.BatchLoader(ds.test, torch.arange(len(ds.test)), batch_size, mean=mean, std=std, device=device), ds


def evaluate_checkpoint(path: str, data: str | None = None, root: str = "~/.cache/slimlab/data",
                        download: bool = False, device: str = "auto") -> dict:
    """Test accuracy of a checkpoint on a data set's test split (the checkpoint's own by default)."""
    from slimlab.engine import evaluate
    from slimlab.engine.distributed import resolve_device

    ck = load_checkpoint(path)
    dev = resolve_device(device)
    model = model_from_checkpoint(ck).to(dev)
    loader, ds = build_eval_loader(ck, data, root, download, device=dev)
    if ds.num_classes != ck["num_classes"]:
        raise SlimlabError(f"{path} predicts {ck['num_classes']} classes but {ds.name} has {ds.num_classes}")
    trained_on = ck.get("data", {}).get("classes")
    if trained_on and list(trained_on) != list(ds.classes):
        raise SlimlabError(f"{path} was trained on classes {trained_on[:3]}..., {ds.name} has {ds.classes[:3]}...")
    r = evaluate(model, loader)
    return {"checkpoint": ck["path"], "model": ck["model_name"], "data": ds.name, "test_acc": r["acc"],
            "test_loss": r["loss"], "n": r["n"], "params": count_params(model),
            "macs": count_macs(model, ds.image_size)}


def plot_curves(run_dir: str | Path) -> None:
    """curves.png: loss and accuracy per epoch from metrics.jsonl."""
    run_dir = Path(run_dir)
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    if not lines:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [m["epoch"] for m in lines]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(ep, [m["train_loss"] for m in lines], label="train")
    if "val_loss" in lines[-1]:
        ax[0].plot([m["epoch"] for m in lines if "val_loss" in m], [m["val_loss"] for m in lines if "val_loss" in m],
                   label="val")
    ax[0].set(xlabel="epoch", ylabel="loss")
    ax[0].legend()
    for key, lab in (("train_acc", "train"), ("val_acc", "val"), ("test_acc", "test")):
        pts = [(m["epoch"], 100 * m[key]) for m in lines if key in m]
        if pts:
            ax[1].plot(*zip(*pts), label=lab)
    ax[1].set(xlabel="epoch", ylabel="accuracy (%)")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(run_dir / ".curves.png.tmp.png", dpi=90)
    plt.close(fig)
    (run_dir / ".curves.png.tmp.png").replace(run_dir / "curves.png")


class _LimitedLoader:
    """The first ``steps`` batches of a loader (per-layer fine-tuning), reshuffled each call."""

    def __init__(self, loader, steps: int):
        self.loader, self.steps, self.calls = loader, steps, 0

    def set_epoch(self, epoch: int) -> None:
        self.calls += 1
        self.loader.set_epoch(1000 + self.calls)

    def __len__(self) -> int:
        return min(self.steps, len(self.loader))

    def __iter__(self):
        for i, b in enumerate(self.loader):
            if i >= self.steps:
                break
            yield b


def corrected_labels(run_dir: str | Path) -> torch.Tensor:
    """PENCIL's corrected labels (argmax y_d) from a run directory's last checkpoint."""
    ck = load_checkpoint(Path(run_dir) / "last.pt" if Path(run_dir).is_dir() else run_dir)
    yt = ck.get("objective", {}).get("y_tilde")
    if yt is None:
        raise SlimlabError(f"{run_dir} is not a PENCIL run (no label variables in its checkpoint)")
    return yt.argmax(1)


def prune(cfg) -> dict:
    """Prune a trained checkpoint (``slimlab prune``) and fine-tune it; returns the summary."""
    import dataclasses

    from slimlab.engine import evaluate
    from slimlab.engine.fit import checkpoint_payload
    from slimlab.losses import Objective
    from slimlab.profile import measure_latency
    from slimlab.prune.pruner import Calibration, plot_channels, prune_model, ratio_for_macs

    t_start = time.time()
    ctx = setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ck = load_checkpoint(cfg.checkpoint)
    model = model_from_checkpoint(ck).to(ctx.device)
    raw = dict(ck.get("config") or {})
    tcfg = from_dict(TrainConfig, raw, "checkpoint config") if raw else TrainConfig()
    tcfg = dataclasses.replace(tcfg, data=cfg.data or tcfg.data, root=cfg.root, epochs=max(1, cfg.finetune_epochs),
                               lr=cfg.ft_lr, schedule="cosine", warmup_epochs=0.0, batch_size=cfg.batch_size,
                               init="", loss="ce", loss_kwargs={}, device=cfg.device, seed=cfg.seed,
                               progress=cfg.progress, labels_per_class=0, clean_subset=0, track_test=False,
                               stop_after=0, eval_every=1,
                               out=cfg.out or f"{Path(ck['path']).parent}-{cfg.method}")
    if tcfg.data == "digits" or tcfg.image_size == 0:
        tcfg.image_size = 0
    out = Path(tcfg.out)
    p = prepare_data(tcfg)
    if p.ds.num_classes != ck["num_classes"]:
        raise SlimlabError(f"{cfg.checkpoint} predicts {ck['num_classes']} classes but {p.ds.name} has "
                           f"{p.ds.num_classes}")
    if cfg.labels_from:
        p.targets = corrected_labels(cfg.labels_from).to(p.targets)
        if len(p.targets) != len(p.ds.train):
            raise SlimlabError(f"--labels-from {cfg.labels_from}: its labels cover another training set")
    size = p.ds.image_size
    loaders = make_loaders(tcfg, p, ctx)
    sub = D.stratified_subset(p.targets[p.train_idx], per_class=cfg.calib_per_class, seed=cfg.seed)
    calib_loader = D.BatchLoader(p.ds.train, p.train_idx[sub], 10**9, mean=p.ds.mean, std=p.ds.std)
    calib = Calibration(next(iter(calib_loader))["image"])
    original = {"params": count_params(model), "macs": count_macs(model, size),
                "test_acc": evaluate(model, loaders.test, ctx)["acc"]}
    measure = cfg.latency and ctx.main  # latency is a rank-0 measurement: other ranks would compete for the CPU
    lat_before = _latencies(model, size, measure_latency) if measure else None
    ratio = cfg.ratio
    if cfg.target_macs:
        if not 0 < cfg.target_macs <= 1:
            raise SlimlabError(f"--target-macs must be in (0, 1], got {cfg.target_macs}")
        ratio = ratio_for_macs(model, cfg.target_macs, size, cfg.layers or None)
    # no SyncBN between layers: swapping BN modules would leave the pruning graph pointing at the old ones
    ft_cfg = dataclasses.replace(tcfg, epochs=1, schedule="constant", progress="none", sync_bn=False)
    between = None
    if cfg.ft_per_layer > 0:
        def between(m):  # noqa: E306
            fit(m, Loaders(_LimitedLoader(loaders.train, cfg.ft_per_layer)), Objective(), ft_cfg, None, ctx)
    info = prune_model(model, cfg.method, ratio, calib, input_size=size, layers=cfg.layers or None, mode=cfg.mode,
                       variant=cfg.thinet_variant, per_image=cfg.samples_per_image, seed=cfg.seed,
                       target=cfg.thinet_target,
                       between_layers=between)
    pruned = {"params": count_params(model), "macs": count_macs(model, size),
              "test_acc": evaluate(model, loaders.test, ctx)["acc"]}
    meta = {"model_name": ck["model_name"], "model_kwargs": ck.get("model_kwargs", {}),
            "num_classes": ck["num_classes"], "pruned": True, "data": data_meta(p.ds), "config": to_dict(tcfg),
            "prune": {"method": cfg.method, "ratio": ratio, "channels": info["channels"], "from": ck["path"]}}
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
        dump_yaml(cfg, out / "config.yaml")
    summary: dict[str, Any] = {"method": cfg.method, "mode": cfg.mode, "ratio": ratio,
                               "target_macs": cfg.target_macs or None, "original": original,
                               "pruned": dict(pruned), "channels": info["channels"], "prune_s": info["prune_s"]}
    if cfg.finetune_epochs > 0:
        ft = fit(model, loaders, Objective(), tcfg, out, ctx, meta=meta)
        summary["finetuned"] = {"test_acc": ft["test_acc"], "best_val_acc": ft["best_val_acc"],
                                "epochs": cfg.finetune_epochs, "wall_s": ft["wall_s"]}
    elif ctx.main:
        from slimlab.engine import atomic_save

        state = checkpoint_payload(model, meta, epoch=0, best_val_acc=-1.0, best_epoch=0)
        atomic_save(state, out / "best.pt")
        atomic_save(state, out / "last.pt")
    if measure:
        lat_after = _latencies(model, size, measure_latency)
        summary["original"]["latency_ms"] = lat_before
        summary["pruned"]["latency_ms"] = lat_after
        summary["latency_speedup"] = {k: lat_before[k] / lat_after[k] for k in lat_before}
    summary["macs_reduction"] = original["macs"] / pruned["macs"]
    summary["params_reduction"] = original["params"] / pruned["params"]
    final = summary.get("finetuned", pruned)
    summary.update(model=ck["model_name"], data=tcfg.data, params=pruned["params"], macs=pruned["macs"],
                   test_acc=final["test_acc"], best_val_acc=final.get("best_val_acc"), out=str(out),
                   wall_s=time.time() - t_start)
    if ctx.main:
        write_summary(out, summary)
        plot_channels(info["channels"], out / "channels.png", f"{ck['model_name']} {cfg.method} (ratio {ratio:.3f})")
        if (out / "metrics.jsonl").is_file():
            plot_curves(out)
    return summary


def _latencies(model: torch.nn.Module, size: int, measure) -> dict:
    dev = next(model.parameters()).device
    model.cpu()
    r = {f"batch{b}": measure(model, size, b, warmup=3, iters=iters)["median_ms"] for b, iters in ((1, 30), (64, 5))}
    model.to(dev)
    return r
