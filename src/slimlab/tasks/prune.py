"""``slimlab prune``: prune a trained checkpoint with a criterion, fine-tune it, measure it.

Phases, each a function: load the checkpoint and its data (:func:`load_for_pruning`), collect the
calibration images, measure the original, prune (:func:`prune_model` with an optional fine-tune
between layers), fine-tune (:func:`finetune`), measure the pruned model, write the run directory.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimlab import data as D
from slimlab.config import (
    TrainConfig,
    check_ranges,
    dump_yaml,
    from_dict,
    load_yaml,
    read_json_object,
    to_dict,
)
from slimlab.engine import (
    Dist,
    Loaders,
    Objective,
    atomic_save,
    atomic_write_json,
    checkpoint_image_size,
    evaluate,
    fit,
    load_checkpoint,
    setup,
    write_summary,
)
from slimlab.engine.distributed import on_main
from slimlab.engine.fit import checkpoint_payload, first_non_finite
from slimlab.engine.rundir import claim, config_header, config_run_id, next_free, refuse_inputs_inside
from slimlab.errors import SlimlabError
from slimlab.models.io import model_from_checkpoint
from slimlab.profile import count_macs, count_params, measure_latency
from slimlab.prune import PruneConfig, canonical_name
from slimlab.prune.allocation import Shape, allocate, measure_sensitivity, read_profile
from slimlab.prune.bn_recalibration import batches_of, recalibrate_bn
from slimlab.prune.criterion import Criterion, CriterionOptions, build_criterion
from slimlab.prune.pruner import Calibration, check_options, plot_channels, prune_model, ratio_for_macs
from slimlab.tasks.common import (
    Prepared,
    check_same_classes,
    data_meta,
    make_loaders,
    plot_curves,
    prepare_data,
    refuse_other_command,
    resume_sets,
)

Config = PruneConfig


@dataclass
class Job:
    """What the phases share: the configs, the model being pruned, its data and loaders."""

    cfg: PruneConfig
    tcfg: TrainConfig  # the fine-tuning run's config
    ctx: Dist
    ck: dict
    model: torch.nn.Module
    p: Prepared
    loaders: Loaders
    out: Path
    resumed: bool = False  # continuing a killed run in ``out`` (:func:`resume`)
    pruned: bool = False  # prune_model has finished: from then on the run directory is one to resume


class LimitedLoader:
    """``steps`` batches of a loader (per-layer fine-tuning): fewer than an epoch, or several epochs in a row,
    reshuffled at every pass."""

    def __init__(self, loader, steps: int):
        self.loader, self.steps, self.passes = loader, steps, 0

    def set_epoch(self, epoch: int) -> None:
        pass  # every pass over the underlying loader gets its own shuffle in __iter__

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        done = 0
        while done < self.steps:
            self.passes += 1
            self.loader.set_epoch(1000 + self.passes)
            for b in self.loader:
                if done >= self.steps:
                    return
                yield b
                done += 1


def corrected_labels(run_dir: str | Path) -> torch.Tensor:
    """The training labels a noisy run's detector corrected: ``corrected_labels.npy`` where ``slimlab labels`` ran
    on the run (its flags applied to the given labels), else PENCIL's own (argmax y_d) from the last checkpoint.
    (On digits at 60% noise, PENCIL's network corrected 96% of the flips, its y_d 32%: label_detectors.md.)"""
    run_dir = Path(run_dir)
    f = run_dir / "corrected_labels.npy" if run_dir.is_dir() else None
    if f is not None and f.is_file():
        _check_fresh(run_dir)
        try:
            arr = np.load(f, allow_pickle=False)
        except (ValueError, OSError):
            raise SlimlabError(f"{f} is not a labels array written by slimlab labels") from None
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or (arr.size and arr.min() < 0):
            raise SlimlabError(f"{f} is not a labels array written by slimlab labels")
        return torch.from_numpy(arr.astype(np.int64))
    ck = load_checkpoint(run_dir / "last.pt" if run_dir.is_dir() else run_dir)
    yt = ck.get("objective", {}).get("y_tilde")
    if yt is None:
        raise SlimlabError(f"{run_dir} is neither a PENCIL run nor a run that slimlab labels corrected")
    return yt.argmax(1)


def _check_fresh(run_dir: Path) -> None:
    """Corrections made from another state of the run (it trained on after slimlab labels) are refused."""
    made = read_json_object(run_dir / "corrected_labels.json") if (run_dir / "corrected_labels.json").is_file() else {}
    if not (run_dir / "last.pt").is_file() or not made:
        return
    ck = load_checkpoint(run_dir / "last.pt")
    if (made.get("run_id"), made.get("epoch")) != (ck.get("run_id"), ck.get("epoch")):
        raise SlimlabError(f"{run_dir}: corrected_labels.npy was made at epoch {made.get('epoch')} of run "
                           f"{made.get('run_id')}, the run is now at epoch {ck.get('epoch')} of {ck.get('run_id')}: "
                           f"run slimlab labels {run_dir} again")


def finetune_config(cfg: PruneConfig, ck: dict) -> TrainConfig:
    """The checkpoint's training config, turned into a fine-tuning run (cosine from ``ft_lr``, plain CE)."""
    raw = dict(ck.get("config") or {})
    tcfg = from_dict(TrainConfig, raw, "checkpoint config") if raw else TrainConfig()
    tcfg = dataclasses.replace(tcfg, data=cfg.data or tcfg.data, root=cfg.root or tcfg.root, download=False,
                               image_size=checkpoint_image_size(ck, 0) or tcfg.image_size,
                               epochs=max(1, cfg.finetune_epochs),
                               lr=cfg.ft_lr, schedule="cosine", warmup_epochs=0.0, batch_size=cfg.batch_size,
                               init="", loss="ce", loss_kwargs={}, device=cfg.device, seed=cfg.seed,
                               progress=cfg.progress, labels_per_class=0, clean_subset=0, track_test=False,
                               stop_after=0, eval_every=1, epoch_size=0, clip_grad_norm=0.0,
                               decay_norm_and_bias=False, overwrite=False,
                               out=str(Path(cfg.out).expanduser() if cfg.out else next_free(_default_out(cfg, ck))))
    return tcfg  # the model is pruned and fine-tuned at the size it was trained at (the checkpoint's data size)


def _default_out(cfg: PruneConfig, ck: dict) -> str:
    """Beside the checkpoint's run directory; under runs/ for a zoo model (the zoo stays read-only) and for a
    checkpoint that is not in a run directory (``model.pt`` here would give ``./.-thinet``, ``~/model.pt`` a
    folder beside the home directory)."""
    method = canonical_name(cfg.method)
    if cfg.checkpoint.startswith("zoo:"):
        return f"runs/{cfg.checkpoint[4:]}-{method}"
    path = Path(ck["path"])
    if (path.parent / "config.yaml").is_file():
        return f"{path.parent}-{method}"
    return f"runs/{path.stem}-{method}"


def load_for_pruning(cfg: PruneConfig, ctx: Dist | None = None, ck: dict | None = None) -> Job:
    ctx = ctx or setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ck = ck or load_checkpoint(cfg.checkpoint)
    model = model_from_checkpoint(ck).to(ctx.device)
    tcfg = finetune_config(cfg, ck)
    p = prepare_data(tcfg)
    check_same_classes(cfg.checkpoint, ck, p.ds)
    bad = first_non_finite(model)
    if bad is not None:
        raise SlimlabError(f"{cfg.checkpoint}: '{bad}' holds NaN or inf; there is nothing to prune")
    if cfg.labels_from:
        p.targets = corrected_labels(cfg.labels_from).to(p.targets)
        if len(p.targets) != len(p.ds.train) or int(p.targets.max()) >= p.ds.num_classes:
            raise SlimlabError(f"--labels-from {cfg.labels_from}: its labels cover another training set")
    return Job(cfg, tcfg, ctx, ck, model, p, make_loaders(tcfg, p, ctx), Path(tcfg.out))


def calibration(job: Job) -> Calibration:
    """``calib_per_class`` training images per class, normalised, without augmentation."""
    p = job.p
    sub = D.stratified_subset(p.targets[p.train_idx], per_class=job.cfg.calib_per_class, seed=job.cfg.seed)
    loader = D.BatchLoader(p.ds.train, p.train_idx[sub], 10**9, mean=p.ds.mean, std=p.ds.std)
    return Calibration(next(iter(loader))["image"])


def measure(job: Job) -> dict:
    size = job.p.ds.image_size
    return {"params": count_params(job.model), "macs": count_macs(job.model, size),
            "test_acc": evaluate(job.model, job.loaders.test, job.ctx)["acc"]}


def keep_ratio(job: Job) -> float:
    """``keep_ratio`` (or 1 - ``prune_ratio``), or the largest uniform one that reaches ``target_macs`` (bisection)."""
    cfg = job.cfg
    if cfg.target_macs is None:
        return cfg.resolved_keep_ratio()
    if not 0 < cfg.target_macs <= 1:
        raise SlimlabError(f"--target-macs must be in (0, 1], got {cfg.target_macs}")
    return ratio_for_macs(job.model, cfg.target_macs, job.p.ds.image_size, cfg.layers or None,
                          round_to=cfg.round_to, ignored=cfg.ignore_layers)


def criterion(cfg: PruneConfig) -> Criterion:
    return build_criterion(cfg.method, CriterionOptions(
        variant=cfg.thinet_variant, per_image=cfg.samples_per_image, refine=cfg.thinet_refine,
        samples_per_weight=cfg.samples_per_weight, apoz_at=cfg.apoz_at))


def allocation(job: Job, crit: Criterion, calib: Calibration) -> tuple[dict[str, int] | None, float, dict | None]:
    """(per-layer kept counts or None, the keep ratio, what the allocation decided): ``uniform`` keeps one ratio
    (:func:`keep_ratio`); ``global`` and ``sensitivity`` meet ``target_macs``, or without it the MACs of the
    uniform ratio (:mod:`slimlab.prune.allocation`)."""
    cfg = job.cfg
    if cfg.allocation == "uniform":
        return None, keep_ratio(job), None
    shape = Shape(job.model, job.p.ds.image_size, cfg.layers or None, cfg.ignore_layers, round_to=cfg.round_to)
    target = cfg.target_macs if cfg.target_macs is not None else shape.uniform_macs(cfg.resolved_keep_ratio())
    box: list = [None, None, ""]
    if job.ctx.main:  # decided once, on rank 0: every rank must build the same architecture
        try:
            profile = sensitivity_profile(job, crit, calib, shape) if cfg.allocation == "sensitivity" else None
            box[:2] = allocate(cfg.allocation, job.model, crit, calib, shape, target, floor=cfg.allocation_floor,
                               profile=profile, seed=cfg.seed)
        except SlimlabError as e:
            box[2] = str(e)  # the other ranks stop with the same line instead of waiting for ever
    if job.ctx.enabled:
        import torch.distributed as dist

        dist.broadcast_object_list(box, src=0)
    counts, info, error = box
    if error:
        raise SlimlabError(error)
    return counts, sum(counts.values()) / sum(shape.channels.values()), info


def sensitivity_profile(job: Job, crit: Criterion, calib: Calibration, shape: Shape) -> dict:
    """--sensitivity FILE, or each layer pruned alone and scored on held-out images (written to sensitivity.json)."""
    cfg, p = job.cfg, job.p
    if cfg.sensitivity:
        return read_profile(read_json_object(Path(cfg.sensitivity).expanduser()), cfg.sensitivity)
    if job.resumed and (job.out / "sensitivity.json").is_file():  # measured before the run was killed
        return read_profile(read_json_object(job.out / "sensitivity.json"), str(job.out / "sensitivity.json"))
    pool = p.val_idx if len(p.val_idx) else p.train_idx  # the validation split when there is one
    sub = D.stratified_subset(p.targets[pool], total=min(cfg.sensitivity_images, len(pool)), seed=cfg.seed + 1)
    loader = D.BatchLoader(p.ds.train, pool[sub], 10**9, mean=p.ds.mean, std=p.ds.std, targets=p.targets)
    batch = next(iter(loader))
    say = print if cfg.progress != "none" and job.ctx.main else None
    measured = measure_sensitivity(job.model, crit, calib, batch["image"], batch["target"], shape, seed=cfg.seed,
                                   progress=say)
    measured["split"] = "validation" if len(p.val_idx) else "training"
    if job.ctx.main:
        atomic_write_json(job.out / "sensitivity.json", measured)
    return read_profile(measured, "the measured profile")


def bn_images(job: Job) -> torch.Tensor | None:
    """``bn_images`` training images for the BatchNorm re-estimation (``calibration_images``), augmented as the
    checkpoint was trained; None when re-estimation is off."""
    cfg = job.cfg
    if not cfg.bn_recalibrate or cfg.bn_images <= 0:
        return None
    return calibration_images(job.p, cfg.bn_images, cfg.seed, job.tcfg.augment)


def calibration_images(p: Prepared, n: int, seed: int, augment: bool) -> torch.Tensor:
    """``n`` stratified training images, normalised, with the data set's training augmentation when ``augment``.
    BatchNorm statistics must come from images drawn as in training: statistics of un-augmented images do not
    match what the layers after each BatchNorm learnt (the zoo's ResNet-20, unpruned: 87.36% as trained, 84.18%
    re-estimated on 1,000 un-augmented images, 87.46% on 1,000 augmented ones)."""
    sub = D.stratified_subset(p.targets[p.train_idx], total=min(n, len(p.train_idx)), seed=seed)
    loader = D.BatchLoader(p.ds.train, p.train_idx[sub], 10**9, mean=p.ds.mean, std=p.ds.std,
                           augment=augment, pad=p.ds.pad, flip=p.ds.flip, seed=seed)
    return next(iter(loader))["image"]


def recalibrate(job: Job, pruned: dict) -> dict:
    """Re-estimate BatchNorm statistics (``--bn-recalibrate``); the pruned model's accuracy before and after it,
    with a warning when it is still near chance before fine-tuning."""
    images = bn_images(job)
    if images is not None:
        pruned["test_acc_before_bn"] = pruned["test_acc"]
        pruned["bn_layers"] = recalibrate_bn(job.model, batches_of(images.to(job.ctx.device)))
        pruned["bn_images"] = len(images)
        pruned["bn_augmented"] = job.tcfg.augment
        pruned["test_acc"] = evaluate(job.model, job.loaders.test, job.ctx)["acc"]
    chance = 1.0 / job.p.ds.num_classes
    if pruned["test_acc"] < 1.5 * chance:
        pruned["warning"] = (f"the pruned model is near chance ({100 * pruned['test_acc']:.1f}%, chance "
                             f"{100 * chance:.1f}%) before fine-tuning"
                             + ("" if images is not None else "; --bn-recalibrate usually repairs much of it")
                             + ("" if job.cfg.finetune_epochs else "; fine-tune it (--finetune-epochs)"))
    return pruned


def val_labels(tcfg: TrainConfig, cfg: PruneConfig) -> str:
    """Which labels the fine-tuning's validation accuracy is scored on: the split follows the checkpoint's run."""
    if tcfg.clean_val or not (tcfg.noise or cfg.labels_from):
        return "clean" if tcfg.clean_val else "given"
    return "corrected" if cfg.labels_from else "noisy"


def checkpoint_identity(ck: dict) -> dict:
    """What a resumed prune checks it starts from again: the source checkpoint's run, epoch and size in bytes."""
    path = Path(ck["path"])
    return {"run_id": ck.get("run_id"), "epoch": ck.get("epoch"),
            "bytes": path.stat().st_size if path.is_file() else None}


def layer_steps(cfg: PruneConfig, steps_per_epoch: int) -> int:
    """SGD steps of fine-tuning after each pruned layer: ``ft_per_layer``, else ``ft_layer_epochs`` epochs."""
    if cfg.mode != "layerwise":
        return 0
    if cfg.ft_per_layer > 0:
        return cfg.ft_per_layer
    return max(1, round(cfg.ft_layer_epochs * steps_per_epoch)) if cfg.ft_layer_epochs > 0 else 0


class LayerFinetune:
    """ThiNet's fine-tuning after each pruned layer: ``steps`` SGD steps at ``ft_layer_lr``, constant. Its state
    (the passes over the training set so far, which seed their shuffles) goes into the prune's progress file."""

    def __init__(self, job: Job, steps: int):
        # no SyncBN between layers: swapping BN modules would leave the pruning graph pointing at the old ones
        self.cfg = dataclasses.replace(job.tcfg, epochs=1, schedule="constant", progress="none", sync_bn=False,
                                       lr=job.cfg.ft_layer_lr, warmup_epochs=0.0)
        self.limited, self.ctx = LimitedLoader(job.loaders.train, steps), job.ctx

    def __call__(self, model: torch.nn.Module) -> None:
        fit(model, Loaders(self.limited), Objective(), self.cfg, None, self.ctx)

    def state_dict(self) -> dict:
        return {"passes": self.limited.passes}

    def load_state_dict(self, state: dict) -> None:
        self.limited.passes = int(state["passes"])


def between_layers(job: Job) -> LayerFinetune | None:
    """ThiNet's fine-tuning after each pruned layer, or None."""
    steps = layer_steps(job.cfg, len(job.loaders.train))
    return LayerFinetune(job, steps) if steps > 0 else None


def finetune(job: Job, meta: dict) -> dict | None:
    """The final fine-tuning run into the output directory (or the pruned weights as they are); a resumed prune
    continues a fine-tuning cut short from its ``last.pt``."""
    if job.cfg.finetune_epochs > 0:
        last = job.out / "last.pt"
        ck = load_checkpoint(last) if job.resumed and last.is_file() else None
        if ck is not None and ck.get("run_id") != meta["run_id"]:
            raise SlimlabError(f"{job.out} mixes two runs: last.pt is from run {ck.get('run_id')}, config.yaml from "
                               f"run {meta['run_id']}; start over with --overwrite")
        ft = fit(job.model, job.loaders, Objective(), job.tcfg, job.out, job.ctx, meta=meta, resume=ck)
        return {"test_acc": ft["test_acc"], "best_val_acc": ft["best_val_acc"],
                "epochs": job.cfg.finetune_epochs, "wall_s": ft["wall_s"]}
    if job.ctx.main:
        state = checkpoint_payload(job.model, meta, epoch=0, best_val_acc=-1.0, best_epoch=0)
        atomic_save(state, job.out / "best.pt")
        atomic_save(state, job.out / "last.pt")
    return None


def latencies(model: torch.nn.Module, size: int) -> dict:
    """CPU latency at batch 1 and 64: {"batch1": median ms, ..., "spread": {"batch1": [p10, p90], ...}}."""
    dev = next(model.parameters()).device
    model.cpu().to(memory_format=torch.contiguous_format)  # fine-tuning may have left it channels-last
    r: dict = {"spread": {}}
    for b, iters in ((1, 20), (64, 5)):
        m = measure_latency(model, size, b, warmup=3, iters=iters)
        r[f"batch{b}"], r["spread"][f"batch{b}"] = m["median_ms"], [m["p10_ms"], m["p90_ms"]]
    model.to(dev)
    return r


STATE = "prune_state.pt"  # a layer-by-layer prune's progress (:class:`~slimlab.prune.pruner.LayerwiseState`)


def run(cfg: PruneConfig, resume_id: str | None = None) -> dict:
    """Prune a trained checkpoint (``slimlab prune``) and fine-tune it; returns the summary. ``resume_id``: continue
    the killed run of that id in ``cfg.out`` (:func:`resume`)."""
    t_start = time.time()
    check_ranges(cfg)
    canonical_name(cfg.method)  # a typo fails now, not after loading data and models
    check_options(cfg.resolved_keep_ratio(), cfg.mode, cfg.thinet_variant, cfg.thinet_target, cfg.thinet_refine)
    if cfg.target_macs is not None and (cfg.keep_ratio is not None or cfg.prune_ratio is not None):
        raise SlimlabError(f"give --target-macs or --{'keep' if cfg.keep_ratio is not None else 'prune'}-ratio, "
                           "not both (each sets how much is pruned)")
    if cfg.sensitivity and cfg.allocation != "sensitivity":
        raise SlimlabError("--sensitivity is a profile for --allocation sensitivity (give both, or neither)")
    if cfg.sensitivity:
        read_profile(read_json_object(Path(cfg.sensitivity).expanduser()), cfg.sensitivity)  # a bad file fails now
    ctx, ck = setup(cfg.device), load_checkpoint(cfg.checkpoint)
    # the run owns its directory, claimed before the data and the model are loaded: a refusal comes at once
    cfg.out = str(Path(cfg.out).expanduser() if cfg.out else next_free(_default_out(cfg, ck)))
    if cfg.overwrite and resume_id is None:
        refuse_inputs_inside(cfg.out, {"the checkpoint being pruned": cfg.checkpoint, "--sensitivity": cfg.sensitivity,
                                       "--labels-from": cfg.labels_from})
    run_dir = on_main(lambda: claim(cfg.out, overwrite=cfg.overwrite, resume_id=resume_id), ctx)
    cfg.overwrite = False  # done: not written into config.yaml
    run_id = resume_id or (run_dir.run_id if run_dir else "")
    job, wrote = None, False
    try:
        job = load_for_pruning(cfg, ctx, ck)
        job.resumed = resume_id is not None
        if ctx.main:  # first: a run killed at any point after this can be resumed with its own config
            run_dir.clear()  # --overwrite: the old run goes only now that the inputs have loaded
            dump_yaml(cfg, job.out / "config.yaml", config_header(run_id))
            wrote = True
        return _prune(job, run_id, t_start)
    except SlimlabError:
        if wrote and resume_id is None and not (job is not None and job.pruned) and \
                not (Path(cfg.out) / STATE).exists():
            for name in ("config.yaml", "sensitivity.json"):  # refused before any layer: nothing to resume
                (Path(cfg.out) / name).unlink(missing_ok=True)
        raise
    finally:
        if run_dir is not None:
            run_dir.release()


# what a resume may change: where and how visibly it runs, not what it computes
RESUME_MAY_CHANGE = ("progress", "threads", "device")


def resume(run_dir: str | Path, sets: list[str] | None = None) -> dict:
    """Continue a killed ``slimlab prune`` in ``run_dir`` with its own config.yaml: the layers pruned so far are
    read from its progress file, a final fine-tuning cut short continues from its ``last.pt``; what the run had
    not saved (the original's measurement, the allocation) is computed again, with the same result."""
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / "config.yaml").is_file():
        raise SlimlabError(f"not a run directory (no config.yaml): {run_dir}")
    run_id = config_run_id(run_dir / "config.yaml")
    if not run_id:
        raise SlimlabError(f"{run_dir}/config.yaml is not a run's (no run header line): nothing to resume")
    refuse_other_command(load_yaml(run_dir / "config.yaml"), run_dir, "prune")
    if (run_dir / "summary.json").is_file():
        raise SlimlabError(f"{run_dir} already finished (it has a summary.json)")
    raw = {**load_yaml(run_dir / "config.yaml"), **resume_sets(sets, RESUME_MAY_CHANGE)}
    cfg = from_dict(PruneConfig, raw, str(run_dir / "config.yaml"))
    cfg.out, cfg.overwrite = str(run_dir), False
    return run(cfg, resume_id=run_id)


def _prune(job: Job, run_id: str, t_start: float) -> dict:
    cfg = job.cfg
    calib, size = calibration(job), job.p.ds.image_size
    original = measure(job)
    timed = cfg.latency and job.ctx.main  # a rank-0 measurement: other ranks would compete for the CPU
    lat_before = latencies(job.model, size) if timed else None
    crit = criterion(cfg)
    keep, ratio, alloc = allocation(job, crit, calib)
    info = prune_model(job.model, crit, ratio, calib, input_size=size, layers=cfg.layers or None,
                       mode=cfg.mode, seed=cfg.seed, target=cfg.thinet_target, round_to=cfg.round_to,
                       ignored=cfg.ignore_layers, between_layers=between_layers(job), keep=keep,
                       state_file=job.out / STATE if job.ctx.main or job.resumed else None,
                       state_key={"run_id": run_id, "checkpoint": checkpoint_identity(job.ck)},
                       progress=print if cfg.progress != "none" and job.ctx.main else None)
    job.pruned = True
    pruned = recalibrate(job, measure(job))
    method = canonical_name(cfg.method)
    meta = {"model_name": job.ck["model_name"], "model_kwargs": job.ck.get("model_kwargs", {}),
            "num_classes": job.ck["num_classes"], "pruned": True, "data": data_meta(job.p.ds),
            "config": to_dict(job.tcfg), "run_id": run_id,
            "prune": {"method": method, "ratio": ratio, "channels": info["channels"], "from": job.ck["path"]}}
    summary: dict[str, Any] = {"run_id": run_id, "method": method, "thinet_refine": cfg.thinet_refine,
                               "mode": cfg.mode, "ratio": ratio,
                               "keep_ratio": ratio, "target_macs": cfg.target_macs, "original": original,
                               "pruned": dict(pruned), "channels": info["channels"], "prune_s": info["prune_s"],
                               "allocation": alloc or {"mode": "uniform"}}
    if job.cfg.finetune_epochs > 0:
        summary["val_labels"] = val_labels(job.tcfg, job.cfg)
    if job.resumed:
        summary["resumed"] = True  # wall_s is this process's; prune_s counts the layers before the kill too
    ft = finetune(job, meta)
    if ft is not None:
        summary["finetuned"] = ft
    if timed:
        lat_after = latencies(job.model, size)
        summary["original"]["latency_ms"], summary["pruned"]["latency_ms"] = lat_before, lat_after
        summary["latency_speedup"] = {k: lat_before[k] / lat_after[k] for k in ("batch1", "batch64")}
    return _finish(job, summary, original, pruned, ft, ratio, t_start)


def _finish(job: Job, summary: dict, original: dict, pruned: dict, ft: dict | None, ratio: float,
            t_start: float) -> dict:
    summary["macs_reduction"] = original["macs"] / pruned["macs"]
    summary["params_reduction"] = original["params"] / pruned["params"]
    final = ft or pruned
    summary.update(model=job.ck["model_name"], data=job.tcfg.data, params=pruned["params"], macs=pruned["macs"],
                   test_acc=final["test_acc"], best_val_acc=final.get("best_val_acc"), out=str(job.out),
                   wall_s=time.time() - t_start)
    if job.ctx.main:
        write_summary(job.out, summary)
        (job.out / STATE).unlink(missing_ok=True)  # done: the run directory holds the pruned model itself
        plot_channels(summary["channels"], job.out / "channels.png",
                      f"{job.ck['model_name']} {summary['method']} " + (
                          f"(keep ratio {ratio:.3f})" if job.cfg.allocation == "uniform" else
                          f"({job.cfg.allocation} allocation, {ratio:.1%} of the channels kept)"))
        if (job.out / "metrics.jsonl").is_file():
            plot_curves(job.out)
    return summary


prune = run
