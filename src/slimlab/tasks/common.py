"""What several tasks assemble from a :class:`~slimlab.config.TrainConfig`: data, loaders, model.

``prepare_data`` builds the data set with optional synthetic noise and subsets, ``make_loaders``
the training, validation and test loaders, ``build_model`` the model (initialised from ``--init``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from slimlab import data as D
from slimlab.config import TrainConfig, load_yaml, parse_set, to_dict
from slimlab.engine import Dist, Loaders, load_checkpoint, predict
from slimlab.engine.checkpoint import FORMAT, check_metadata, read_weights_only
from slimlab.engine.fit import refuse_non_tensor
from slimlab.errors import SlimlabError
from slimlab.io import pyplot, read_jsonl, save_figure
from slimlab.losses import estimate_transition
from slimlab.models import create_model, reset_classifier
from slimlab.models.io import (
    head_keys,
    load_matching,
    match_report,
    model_from_checkpoint,
    plain_state_dict,
    read_safetensors,
    summarize_match,
)
from slimlab.models.registry import model_kwargs
from slimlab.noise import corrupt, load_matrix, mapping_for, parse_noise
from slimlab.profile import count_macs
from slimlab.profile.macs import activation_bytes


@dataclass
class Prepared:
    """Everything ``train`` assembles before the loop; reused by pruning, probing and label issues."""

    ds: D.DataSet
    targets: torch.Tensor  # training targets used for learning (noisy when noise was injected)
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    noise: dict = field(default_factory=dict)
    transition: np.ndarray | None = None


def to_train_config(cfg: TrainConfig) -> TrainConfig:
    """The plain TrainConfig of a subclass config (pretrain, probe): what config.yaml holds and resume reads."""
    return TrainConfig(**{f.name: getattr(cfg, f.name) for f in fields(TrainConfig)})


def default_out(cfg: TrainConfig) -> str:
    name = cfg.data.split(":", 1)[-1].rstrip("/").split("/")[-1]
    return f"runs/{name}-{cfg.model.replace(':', '_')}"


def inject_noise(cfg: TrainConfig, clean: torch.Tensor, classes: list[str]) -> tuple[torch.Tensor, dict, np.ndarray]:
    """The noisy training targets of ``cfg.noise``, the record written as noise.json, and the transition matrix."""
    kind, rate, path = parse_noise(cfg.noise)
    matrix = load_matrix(path) if path else None
    mapping = mapping_for(classes, cfg.noise_mapping, cfg.noise_convention) if kind == "asymmetric" else None
    targets, transition = corrupt(clean, kind, rate if rate is not None else 0.0, len(classes),
                                  cfg.noise_seed, cfg.noise_mode, cfg.noise_exclude_true, mapping=mapping,
                                  matrix=matrix)
    flipped = torch.nonzero(targets != clean).flatten()
    noise = {"spec": cfg.noise, "kind": kind, "rate": rate, "mode": cfg.noise_mode,
             "exclude_true": cfg.noise_exclude_true, "seed": cfg.noise_seed,
             "mapping": {classes[i]: classes[j] for i, j in mapping.items()} if mapping else None,
             "realised_rate": len(flipped) / max(len(clean), 1), "flipped": flipped.tolist(),
             "transition": transition.tolist()}
    return targets, noise, transition


def prepare_data(cfg: TrainConfig, ds: D.DataSet | None = None) -> Prepared:
    """Data set, (noisy) targets and the train/validation index split of ``cfg``."""
    ds = ds or D.build(cfg.data, cfg.root, cfg.download, cfg.image_size)
    clean = ds.train.targets
    targets, noise, transition = clean.clone(), {}, None
    if cfg.noise:
        targets, noise, transition = inject_noise(cfg, clean, list(ds.classes))
    if not 0 <= cfg.val_fraction < 1:
        raise SlimlabError(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
    train_idx, val_idx = D.stratified_split(targets, cfg.val_fraction, seed=cfg.seed)
    if cfg.labels_per_class:
        if cfg.labels_rule == "first":  # RotNet's official semi-supervised rule
            train_idx = train_idx[D.first_per_class(targets[train_idx], cfg.labels_per_class)]
        else:
            train_idx = train_idx[D.stratified_subset(targets[train_idx], per_class=cfg.labels_per_class,
                                                      seed=cfg.seed)]
    if cfg.train_subset:
        train_idx = train_idx[D.stratified_subset(targets[train_idx], total=cfg.train_subset, seed=cfg.seed)]
    if cfg.clean_subset:
        # Sun et al. 2017's clean fine-tuning: K images per class of the (noisy) training images, with their *true*
        # labels (drawn after --train-subset: part of the user's own data is re-labelled)
        sub = D.stratified_subset(clean[train_idx], per_class=cfg.clean_subset, seed=cfg.seed)
        # the targets become the true labels everywhere, so validation also scores against clean labels
        train_idx, targets = train_idx[sub], clean.clone()
    return Prepared(ds, targets, train_idx, val_idx, noise, transition)


def make_loaders(cfg: TrainConfig, p: Prepared, ctx: Dist, shuffle: bool = True) -> Loaders:
    ds = p.ds
    common = {"mean": ds.mean, "std": ds.std, "device": ctx.device, "channels_last": cfg.channels_last}
    bs = cfg.batch_size
    if ctx.world > 1 and bs % ctx.world:
        raise SlimlabError(f"batch_size {bs} must be divisible by the {ctx.world} processes")
    train = D.BatchLoader(ds.train, p.train_idx, bs, shuffle=shuffle, augment=cfg.augment, pad=ds.pad, flip=ds.flip,
                          drop_last=max(len(p.train_idx), cfg.epoch_size) > bs, seed=cfg.seed, rank=ctx.rank,
                          world=ctx.world, targets=p.targets, epoch_size=cfg.epoch_size, **common)
    eval_bs = -(-max(bs, 256) // ctx.world) * ctx.world  # a multiple of the process count
    val_targets = ds.train.targets if cfg.clean_val else p.targets  # the true labels, or the (noisy) given ones
    val = (D.BatchLoader(ds.train, p.val_idx, eval_bs, rank=ctx.rank, world=ctx.world, targets=val_targets, **common)
           if len(p.val_idx) else None)
    test = D.BatchLoader(ds.test, torch.arange(len(ds.test)), eval_bs, rank=ctx.rank, world=ctx.world, **common)
    return Loaders(train, val, test)


def build_model(cfg: TrainConfig, num_classes: int, classes: list[str] | None = None) -> tuple[torch.nn.Module, dict]:
    """The model of ``cfg``, initialised from ``cfg.init`` when given; returns (model, checkpoint meta).

    ``cfg.init`` is a slimlab checkpoint or plain weights (a torchvision or timm ``.pth``, a ``.safetensors``):
    tensors are copied by name and shape, and ``meta["init"]`` reports what was copied and what was skipped.
    The classifier is copied only when the checkpoint's classes are ``classes`` (noisy pre-training, then
    clean fine-tuning on the same classes); otherwise the head starts fresh."""
    torch.manual_seed(cfg.seed)
    model_kwargs(cfg.model_kwargs)
    meta = {"model_name": cfg.model, "model_kwargs": dict(cfg.model_kwargs), "num_classes": num_classes}
    if not cfg.init:
        return create_model(cfg.model, num_classes, **cfg.model_kwargs), meta
    ck = load_init(cfg.init)
    if ck.get("pruned"):  # fine-tune a pruned model: its architecture comes from the checkpoint
        if ck["model_name"] != cfg.model:
            raise SlimlabError(f"--init {cfg.init} is a pruned {ck['model_name']}, not {cfg.model}")
        model = model_from_checkpoint(ck)
        if ck["num_classes"] != num_classes:
            reset_classifier(model, num_classes)
        meta.update(pruned=True, model_kwargs=ck.get("model_kwargs", {}))
        return model, meta
    model = create_model(cfg.model, num_classes, **cfg.model_kwargs)
    if hasattr(model, "load_trunk"):  # a probe on frozen features: the checkpoint is its trunk
        copied, total = model.load_trunk(ck["state_dict"]), len(ck["state_dict"])
        meta["init"] = {"from": cfg.init, "tensors_copied": copied, "tensors_total": total, "head": "not applicable"}
    else:
        ck_classes = (ck.get("data") or {}).get("classes")
        pretext = (ck.get("config") or {}).get("loss") == "rotnet"  # its head predicts rotations, not the classes
        if ck.get("plain"):  # no record of its classes: the head is kept only if its shape fits
            same = True
        else:
            same = not pretext and (classes is None or ck_classes is None or list(ck_classes) == list(classes))
        rep = match_report(model, ck["state_dict"], skip_head=not same)
        copied, total = load_matching(model, ck["state_dict"], skip_head=not same)
        heads = head_keys(model)
        head = ("fresh (a pretext model's rotation head)" if pretext else "copied (same classes)" if same
                else "fresh (the classes differ)")
        if same and heads and not heads & set(rep["copied"]):
            head = "fresh (another shape)"  # same classes, or plain weights, whose head does not fit
        elif ck.get("plain"):
            head = "copied" if heads else "not applicable (no linear classifier)"
        meta["init"] = {"from": cfg.init, "tensors_copied": copied, "tensors_total": total, "head": head,
                        "report": summarize_match(rep), "skipped": {k: v[:20] for k, v in rep.items() if k != "copied"}}
        refuse_unmatched(model, rep["copied"], cfg)
    if meta["init"]["tensors_copied"] == 0:
        raise SlimlabError(f"--init {cfg.init}: no tensor matches {cfg.model}'s architecture")
    return model, meta


def refuse_unmatched(model: torch.nn.Module, copied: list[str], cfg: TrainConfig) -> None:
    """One line when no weight outside the classifier was copied: BatchNorm's batch counters and a classifier bias
    of the same class count match any checkpoint, so a file of another width or architecture would otherwise
    "load" and train from scratch unnoticed."""
    head = head_keys(model)
    trunk = [k for k, _ in model.named_parameters() if k not in head] or [k for k, _ in model.named_parameters()]
    if not set(trunk) & set(copied):
        raise SlimlabError(f"--init {cfg.init}: none of {cfg.model}'s weights outside the classifier matches the "
                           f"file by name and shape (another width or architecture?)")


def load_init(path: str) -> dict:
    """What ``--init`` names: a slimlab checkpoint, or plain weights as {"state_dict", "plain": True, "path"}:
    a ``.safetensors`` file, or a torch file holding a state dict (loaded with ``weights_only=True``)."""
    if path.endswith(".safetensors"):
        sd, _ = read_safetensors(path)
        return {"state_dict": sd, "plain": True, "path": path}
    p, obj = read_weights_only(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        check_metadata(obj, str(p))
        return {**obj, "path": str(p)}
    return {"state_dict": plain_state_dict(obj, str(p)), "plain": True, "path": str(p)}


def macs_or_refuse(model: torch.nn.Module, name: str, size: int, flag: str = "--image-size") -> int:
    """The model's MACs at ``size``, from one forward pass; a size the architecture cannot take (too small for its
    downsampling, a fixed-size head) is one line before any work, not a traceback later."""
    try:
        return count_macs(model, size)
    except SlimlabError:
        raise
    except (RuntimeError, ValueError) as e:
        first = str(e).splitlines()[0][:160]
        if "channels" in first:  # a model for another number of input channels: not a question of size
            raise SlimlabError(f"{name} does not take 3-channel images ({first}): slimlab feeds RGB images "
                               "(grayscale ones are repeated to 3 channels); give the model 3 input channels") from None
        raise SlimlabError(f"{name} cannot run on {size}x{size} images ({first}): "
                           f"choose another {flag} or model") from None


def refuse_other_command(raw: dict, run_dir: Path, wanted: str) -> None:
    """One line when ``run_dir``'s config.yaml (``raw``) was written by another command than ``wanted`` (``train``
    for the training loop's runs, ``prune``), naming the command that continues it, instead of a list of the
    other command's options as unknown keys."""
    kind = "prune" if "checkpoint" in raw and "method" in raw else "train"
    if kind == ("train" if wanted == "labels" else wanted):
        return
    if wanted == "labels":
        raise SlimlabError(f"{run_dir} is a `slimlab prune` run: labels judges a training run's labels (run it on "
                           "the run that was pruned)")
    raise SlimlabError(f"{run_dir} is a `slimlab {kind}` run: `slimlab {kind} --resume {run_dir}` continues it")


def refuse_unused_options(cfg: TrainConfig) -> None:
    """One line for an option that the others make meaningless (it would be ignored without a word)."""
    default = TrainConfig()
    if cfg.noise_mapping and not str(cfg.noise).startswith("asymmetric"):
        raise SlimlabError(f"--noise-mapping is for asymmetric noise; --noise is {cfg.noise or 'none'}")
    if cfg.noise_mode != default.noise_mode and not cfg.noise:
        raise SlimlabError(f"--noise-mode {cfg.noise_mode} needs --noise")
    if cfg.loss == "rotnet" and (cfg.noise or cfg.clean_subset or cfg.clean_val):
        raise SlimlabError("the rotation pretext never reads the labels: --noise, --clean-subset and --clean-val "
                           "have no effect on it")


def refuse_wrong_outputs(model: torch.nn.Module, name: str, num_classes: int, size: int) -> None:
    """One line, before any training, when the model's output is not one score per class: a user's constructor
    that takes no ``num_classes`` and ends in a conv classifier of another size would train against labels it
    cannot express (and fail later, in ``labels``, with a shape error)."""
    p = next(model.parameters(), None)
    if p is None:
        return
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, size, size, device=p.device, dtype=p.dtype))
    except Exception:  # noqa: BLE001 - a model that cannot run at this size is macs_or_refuse's line
        return
    finally:
        model.train(was)
    refuse_non_tensor(out, name)
    if out.dim() == 2 and out.shape[-1] != num_classes:
        raise SlimlabError(f"{name} outputs {out.shape[-1]} scores per image but the data has {num_classes} classes: "
                           "build it with num_classes (a constructor argument) or a head of that size")


def refuse_if_too_big(model: torch.nn.Module, name: str, size: int, batch: int, share: float = 0.5) -> None:
    """One line, before any work, when a batch of ``batch`` images of ``size`` would need more than ``share`` of the
    memory this machine has free (estimated by :func:`slimlab.profile.macs.activation_bytes`)."""
    free = _available_memory()
    if free is None:  # not on this platform: no check
        return
    need = batch * activation_bytes(model, size)
    if need > share * free:
        raise SlimlabError(f"{name}: a batch of {batch} at {size}x{size} needs about {need / 2**30:.1f} GiB of "
                           f"activations; {free / 2**30:.1f} GiB are free: give a smaller --batch or --input-size")


def _available_memory() -> int | None:
    """MemAvailable (free plus reclaimable cache) in bytes, or free pages where /proc/meminfo is missing."""
    import os

    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_same_classes(what: str, ck: dict, ds: D.DataSet) -> None:
    """One line when a checkpoint's model was trained on other classes than ``ds`` has (their number or names):
    pairing them would mislabel every prediction."""
    if ds.num_classes != ck["num_classes"]:
        raise SlimlabError(f"{what} predicts {ck['num_classes']} classes but {ds.name} has {ds.num_classes}")
    trained_on = (ck.get("data") or {}).get("classes")
    if trained_on and [str(c) for c in trained_on] != list(ds.classes):
        raise SlimlabError(f"{what} was trained on classes {', '.join(map(str, trained_on[:3]))}..., but {ds.name} "
                           f"has {', '.join(ds.classes[:3])}...: give the data it was trained on")


def data_meta(ds: D.DataSet) -> dict:
    return {"name": ds.name, "classes": list(ds.classes), "mean": list(ds.mean), "std": list(ds.std),
            "image_size": ds.image_size}


def transition_estimator(p: Prepared, ctx: Dist):
    """For ``--loss forward`` with ``estimate_from``: checkpoint path -> T estimated from its predictions."""
    def estimate(path: str) -> torch.Tensor:
        model = model_from_checkpoint(load_checkpoint(path)).to(ctx.device)
        loader = D.BatchLoader(p.ds.train, p.train_idx, 512, mean=p.ds.mean, std=p.ds.std, device=ctx.device)
        probs, _ = predict(model, loader)
        return torch.tensor(estimate_transition(probs), dtype=torch.float32)
    return estimate


def plot_curves(run_dir: str | Path) -> None:
    """curves.png: loss and accuracy per epoch from metrics.jsonl."""
    run_dir = Path(run_dir)
    lines = read_jsonl(run_dir / "metrics.jsonl")
    if not lines:
        return
    fig, ax = pyplot().subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot([m["epoch"] for m in lines], [m["train_loss"] for m in lines], label="train")
    val = [(m["epoch"], m["val_loss"]) for m in lines if "val_loss" in m]
    if val:
        ax[0].plot(*zip(*val), label="val")
    ax[0].set(xlabel="epoch", ylabel="loss")
    ax[0].legend()
    for key, lab in (("train_acc", "train"), ("val_acc", "val"), ("test_acc", "test")):
        pts = [(m["epoch"], 100 * m[key]) for m in lines if key in m]
        if pts:
            ax[1].plot(*zip(*pts), label=lab)
    ax[1].set(xlabel="epoch", ylabel="accuracy (%)")
    ax[1].legend()
    fig.tight_layout()
    save_figure(fig, run_dir / "curves.png", dpi=90)


def resume_sets(sets: list[str] | None, may_change: tuple[str, ...]) -> dict:
    """``--set`` given with ``--resume``, parsed; an option that would change what the run computes is refused."""
    parsed = parse_set(sets or [])
    moved = sorted(k for k in parsed if k in ("out", "overwrite"))
    if moved:
        raise SlimlabError(f"--resume continues the run in its own folder: drop --set {moved[0]}=... (to continue "
                           "elsewhere, copy the folder first)")
    fixed = sorted(k for k in parsed if k not in may_change)
    if fixed:
        raise SlimlabError(f"--resume cannot change {', '.join(fixed)}: it would no longer be the same run "
                           f"(a resume may change {', '.join(may_change[:6])}{'...' if len(may_change) > 6 else ''})")
    return parsed


def options_changed(run_dir: Path, cfg, may_change: tuple[str, ...]) -> list[str]:
    """The options in which ``run_dir/config.yaml`` differs from ``cfg``, but where it writes and what a resume may
    change: empty when the directory holds a run of this config."""
    skip = ("out", "overwrite", *may_change)
    stored, asked = load_yaml(Path(run_dir) / "config.yaml"), to_dict(cfg)
    return sorted(k for k in set(stored) | set(asked) if k not in skip and stored.get(k) != asked.get(k))


def refuse_foreign_file(path: Path, ours, what: str) -> None:
    """One line, before anything is written, when ``path`` exists and is not a file slimlab ``what`` wrote
    (``ours(text)`` recognises one): a user's own ``model.yaml`` or ``profile.json`` is never replaced."""
    if not path.exists() and not path.is_symlink():
        return
    try:
        mine = path.is_file() and not path.is_symlink() and bool(ours(path.read_text()))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError):
        mine = False
    if not mine:
        raise SlimlabError(f"{path} exists and was not written by slimlab {what}: choose another --out, or move it")
