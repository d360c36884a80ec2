"""``slimlab labels RUN``: find training samples whose given label is probably wrong.

Four detectors (``--detector``), compared in ``benchmarks/label_detectors.py``:

- ``pencil-labels``: PENCIL's label distribution y_d (PENCIL runs);
- ``model``: the run's own network's predictions on its training images (no augmentation);
- ``kfold``: *out-of-sample* predictions (the training set split into k stratified folds, a model with the
  run's config trained on k-1 folds predicts the held-out one, so no sample is judged by a model that
  learned its label) with confident learning's rule, as cleanlab applies it;
- ``small-loss``: the run's network's loss on each training image, the largest-loss fraction flagged.

``auto`` takes ``AUTO``'s choice for the run. Ranking is by the suspicion ``1 - p(given label)``
(:func:`slimlab.noise.label_issues.score_label_issues`); each detector flags by its own rule
(:func:`slimlab.noise.label_issues.flag_rule`). This module writes ``label_issues.csv``, ``.json``,
``.png``, ``pred_probs.npy`` (the probabilities of every training sample, [N, K], ready for cleanlab) and
``corrected_labels.npy`` (the given labels with the flagged ones corrected) into the run directory.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from slimlab import data as D
from slimlab.config import TrainConfig, from_dict, load_yaml, read_json_object, to_dict
from slimlab.engine import Dist, Loaders, checkpoint_image_size, fit, load_checkpoint, predict
from slimlab.engine.checkpoint import read_weights_only
from slimlab.engine.distributed import resolve_device
from slimlab.engine.rundir import config_run_id, lock
from slimlab.errors import SlimlabError
from slimlab.io import atomic_save, atomic_write_bytes, atomic_write_json, atomic_write_text, pyplot, save_figure
from slimlab.losses import build_objective, for_cross_validation
from slimlab.models.io import model_from_checkpoint
from slimlab.noise.confident_learning import FILTERS
from slimlab.noise.label_issues import DETECTORS, flag_quality, flag_rule, pencil_probs, score_label_issues
from slimlab.tasks.common import Prepared, build_model, make_loaders, prepare_data, refuse_other_command

# what --detector auto uses, by the kind of run (benchmarks/results/label_detectors.md)
AUTO = {"pencil": "model", "other": "kfold"}


@dataclass
class LabelsConfig:
    POSITIONAL = ("run",)
    WRITES_INTO = ("run",)  # the run directory gets label_issues.* (a recipe keeps it inside its --out)
    RANGES = {"folds": "[2, 100]", "cv_epochs": ">= 0", "grid": "[0, 400]"}
    CHOICES = {"detector": ("auto", *DETECTORS), "filter_by": FILTERS}

    run: str = ""  # a run directory
    detector: str = "auto"  # auto | pencil-labels | model | kfold | small-loss (auto: model on PENCIL runs, else kfold)
    folds: int = 3  # cross-validation folds (--detector kfold)
    cv_epochs: int = 0  # epochs per fold (default: the run's)
    filter_by: str = FILTERS[0]  # confident learning's rule (--detector kfold), as cleanlab's filter_by
    grid: int = 24  # images in label_issues.png (0: none)


Config = LabelsConfig


def _folds(targets: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """A stratified fold number for every position of ``targets``."""
    g = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(targets), dtype=torch.long)
    for c in torch.unique(targets).tolist():
        members = torch.nonzero(targets == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        fold_of[members] = torch.arange(len(members)) % folds
    return fold_of


FOLDS_DIR = "label_folds"  # k-fold's finished folds in the run directory: a killed labels run keeps them


def out_of_sample_probs(cfg: TrainConfig, p: Prepared, folds: int = 3, epochs: int | None = None,
                        cache: Path | None = None) -> torch.Tensor:
    """Softmax predictions for every training sample from models that never trained on it. A fold's training
    depends on the config's seed and the fold, not on the folds before it (the model is built from the seed, the
    engine reseeds every epoch): with ``cache`` a finished fold is saved there and read back by a later call with
    the same training config, samples, labels, device and versions (a labels run killed mid-way redoes only the
    folds it lacked)."""
    probs = torch.zeros(len(p.ds.train), p.ds.num_classes)
    idx = p.train_idx
    fold_of = _folds(p.targets[idx], folds, cfg.seed)
    loss, loss_kwargs = for_cross_validation(cfg.loss, cfg.loss_kwargs)
    fcfg = dataclasses.replace(cfg, epochs=epochs or cfg.epochs, progress="none", stop_after=0, init="", loss=loss,
                               loss_kwargs=loss_kwargs)
    # one process (the folds are small, DDP would not pay), on this rank's own device under torchrun
    ctx = Dist(device=resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0"))))
    key = _fold_key(fcfg, p, folds, ctx.device.type)
    if cache is not None and (cache.is_symlink() or (cache.exists() and not cache.is_dir())):
        raise SlimlabError(f"{cache} is in the way of the k-fold cache (a folder of that name, not a link): move it "
                           "away")
    for f in range(folds):
        path = None if cache is None else cache / f"fold{f}of{folds}.pt"
        got = _read_fold(path, key)
        if got is None:
            sub = dataclasses.replace(p, train_idx=idx[fold_of != f], val_idx=idx[:0])
            model, _ = build_model(fcfg, p.ds.num_classes)
            obj = build_objective(fcfg.loss, p.ds.num_classes, kwargs=fcfg.loss_kwargs, targets=p.targets,
                                  epochs=fcfg.epochs, lr=fcfg.lr)
            fit(model, Loaders(make_loaders(fcfg, sub, ctx).train), obj, fcfg, None, ctx)
            loader = D.BatchLoader(p.ds.train, idx[fold_of == f], 512, mean=p.ds.mean, std=p.ds.std,
                                   device=ctx.device)
            got = predict(model, loader)
            if path is not None:
                path.parent.mkdir(exist_ok=True)
                atomic_save({"key": key, "probs": got[0].cpu(), "index": got[1].cpu()}, path)
        probs[got[1]] = got[0]
    return probs


def _fold_key(fcfg: TrainConfig, p: Prepared, folds: int, device: str) -> str:
    """What a cached fold must have been computed from: the training config (but where its files go and how
    visibly it ran), the fold count, the training samples and their labels, the device type and the versions."""
    from slimlab import __version__

    skip = ("out", "overwrite", "progress", "log", "root", "download", "stop_after")
    h = hashlib.sha256(json.dumps({k: v for k, v in to_dict(fcfg).items() if k not in skip}, sort_keys=True,
                                  default=str).encode())
    h.update(f"{folds}|{len(p.ds.train)}|{device}|{torch.__version__}|{__version__}".encode())
    h.update(p.train_idx.cpu().numpy().tobytes())
    h.update(p.targets.cpu().numpy().tobytes())
    return h.hexdigest()


def _drop_fold_cache(d: Path) -> None:
    if d.is_dir() and not d.is_symlink():
        for f in d.iterdir():
            if f.name.startswith(("fold", ".fold")) and f.is_file():
                f.unlink()
        if not any(d.iterdir()):
            d.rmdir()


def _read_fold(path: Path | None, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A cached fold's (probabilities, sample indices), or None: none there, another key, or not readable."""
    if path is None or not path.is_file():
        return None
    try:
        _, got = read_weights_only(path)
        return (got["probs"], got["index"]) if got.get("key") == key else None
    except (SlimlabError, AttributeError, KeyError):  # a damaged cache file is recomputed, never trusted
        return None


def run(cfg: LabelsConfig) -> dict:
    """Write ``label_issues.csv`` (+ ``.json``, ``.png``) in the run directory; return the report.

    The run directory is locked meanwhile: a training run cannot write there at the same time."""
    run_dir = Path(cfg.run).expanduser()
    if not (run_dir / "config.yaml").is_file():
        raise SlimlabError(f"not a run directory (no config.yaml): {run_dir}")
    with lock(run_dir):
        return _label_issues(cfg, run_dir)


def auto_detector(ck: dict) -> str:
    """``--detector auto``: the PENCIL network's own predictions on a PENCIL run (the best detector measured:
    F1 97.8% on digits, 81.8% on 10,000 CIFAR-10 images), k-fold out-of-sample probabilities otherwise (a network
    that memorised its labels agrees with them in-sample; k-fold never judges a label by a model that learnt it)."""
    return AUTO["pencil" if ck and pencil_probs(ck) is not None else "other"]


def _label_issues(cfg: LabelsConfig, run_dir: Path) -> dict:
    raw = load_yaml(run_dir / "config.yaml")
    refuse_other_command(raw, run_dir, "labels")
    tcfg = from_dict(TrainConfig, raw, str(run_dir / "config.yaml"))
    ck = load_checkpoint(run_dir / "last.pt") if (run_dir / "last.pt").is_file() else {}
    tcfg.image_size = checkpoint_image_size(ck, 0) or tcfg.image_size  # the size the network was trained at
    p = prepare_data(tcfg)
    detector = cfg.detector if cfg.detector != "auto" else auto_detector(ck)
    if cfg.filter_by != FILTERS[0] and detector != "kfold":
        raise SlimlabError(f"--filter-by is confident learning's rule, for --detector kfold; this run's detector is "
                           f"{detector}")
    probs, source = probabilities(detector, cfg, tcfg, p, ck)
    idx = p.train_idx
    given = p.targets[idx]
    li = score_label_issues(given, probs[idx])
    li.flagged = flag_rule(detector, given, probs[idx], cfg.filter_by)
    relabelled = torch.where(li.flagged, li.corrected, given)  # what prune --labels-from fine-tunes on
    rows = [(int(idx[i]), int(given[i]), int(li.corrected[i]), float(li.confidence[i]), float(li.suspicion[i]))
            for i in li.order.tolist()]
    flips = _flipped(run_dir, len(p.ds.train))  # checked before any file is written
    _write_csv(run_dir / "label_issues.csv", rows, p.ds.classes)
    if detector == "kfold":
        source += f" (filter_by {cfg.filter_by})"
    report = {"run_id": ck.get("run_id") or config_run_id(run_dir / "config.yaml"), "source": source,
              "train_samples": len(idx), "flagged": int(li.flagged.sum()),
              "flagged_fraction": float(li.flagged.float().mean())}
    if flips is not None:
        flipped = torch.zeros(len(p.ds.train), dtype=torch.bool)
        flipped[flips] = True
        clean = p.ds.train.targets[idx]
        report.update(flag_quality(li.flagged, flipped[idx]),
                      corrected_accuracy=float((relabelled == clean).float().mean()),
                      given_accuracy=float((given == clean).float().mean()))
    report["warning"] = _weak_detector(report)
    _write_npy(run_dir / "pred_probs.npy", probs.numpy().astype(np.float32))  # every training sample, [N, K]
    _drop_fold_cache(run_dir / FOLDS_DIR)  # written in full: the cache only served a run killed mid-way
    fixed = p.targets.clone()  # the given labels with the flagged ones corrected
    fixed[idx] = relabelled
    report["changed"] = int((relabelled != given).sum())  # small-loss may flag a sample whose argmax is its label
    _write_npy(run_dir / "corrected_labels.npy", fixed.numpy().astype(np.int64))
    atomic_write_json(run_dir / "corrected_labels.json", {"run_id": ck.get("run_id"), "epoch": ck.get("epoch"),
                                                          "detector": detector})  # what prune checks them against
    atomic_write_json(run_dir / "label_issues.json", report)
    if cfg.grid:
        plot_grid(p.ds, rows[: cfg.grid], run_dir / "label_issues.png")
    report["csv"] = str(run_dir / "label_issues.csv")
    return report


def _write_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def probabilities(detector: str, cfg: LabelsConfig, tcfg: TrainConfig, p: Prepared, ck: dict) -> tuple:
    """The [N, K] probabilities a detector judges the labels by, and a line that says where they came from."""
    if detector == "pencil-labels":
        probs = pencil_probs(ck) if ck else None
        if probs is None:
            raise SlimlabError("--detector pencil-labels needs a PENCIL run (its label variables y~)")
        return probs, "pencil-labels: PENCIL's label distribution y_d"
    if detector in ("model", "small-loss"):
        if not ck:
            raise SlimlabError(f"--detector {detector} needs the run's last.pt")
        return in_sample_probs(ck, p), f"{detector}: the run's network on its training images"
    _check_folds(cfg.folds, p.targets[p.train_idx], p.ds.classes)
    return (out_of_sample_probs(tcfg, p, cfg.folds, cfg.cv_epochs or None, Path(cfg.run).expanduser() / FOLDS_DIR),
            f"kfold: out-of-sample ({cfg.folds}-fold), confident learning")


def in_sample_probs(ck: dict, p: Prepared) -> torch.Tensor:
    """The checkpoint's network's softmax on every training image (no augmentation); rows outside the training
    split stay zero."""
    model = model_from_checkpoint(ck)
    loader = D.BatchLoader(p.ds.train, p.train_idx, 512, mean=p.ds.mean, std=p.ds.std)
    pr, ix = predict(model, loader)
    probs = torch.zeros(len(p.ds.train), p.ds.num_classes)
    probs[ix] = pr
    return probs


def _check_folds(folds: int, targets: torch.Tensor, classes: list[str]) -> None:
    """Every fold must hold out some images of every class (as cleanlab requires): refused before any training."""
    counts = torch.bincount(targets, minlength=len(classes))
    present = torch.nonzero(counts).flatten()
    fewest = int(present[counts[present].argmin()])
    n = int(counts[fewest])
    if n < folds:
        fix = f"give --folds {n} or fewer" if n >= 2 else "cross-validation needs at least 2 images of every class"
        raise SlimlabError(f"--folds {folds}: class '{classes[fewest]}' has only {n} training image(s), and each "
                           f"fold must hold some out: {fix}")


def _flipped(run_dir: Path, n: int) -> torch.Tensor | None:
    """The injected flips recorded in noise.json (indices into the training set), or None without noise; one line
    for a file that is not what the run wrote."""
    f = run_dir / "noise.json"
    if not f.is_file():
        return None
    flipped = read_json_object(f).get("flipped")
    if not isinstance(flipped, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in flipped):
        raise SlimlabError(f"{f}: 'flipped' must be a list of training-sample indices")
    if flipped and not 0 <= min(flipped) <= max(flipped) < n:
        raise SlimlabError(f"{f}: flipped indices must be in [0, {n}), the training set's size")
    return torch.tensor(flipped, dtype=torch.long)


def _weak_detector(report: dict) -> str | None:
    """A warning when the detector looks worse than the labels it judges, else None."""
    if "corrected_accuracy" in report and report["corrected_accuracy"] < report["given_accuracy"]:
        return (f"the detector's labels are less accurate ({100 * report['corrected_accuracy']:.1f}%) than the given "
                f"ones ({100 * report['given_accuracy']:.1f}%): train the run longer, or use more --cv-epochs")
    if report["flagged_fraction"] > 0.5 and "precision" not in report:  # with known flips, precision says more
        return (f"the detector disagrees with {100 * report['flagged_fraction']:.0f}% of the labels: it is probably "
                "weaker than the labels (train the run longer, or use more --cv-epochs)")
    return None


def _write_csv(path: Path, rows: list[tuple], classes: list[str]) -> None:
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["index", "given_label", "corrected_label", "confidence", "suspicion", "given_name", "corrected_name"])
    for r in rows:
        w.writerow([r[0], r[1], r[2], f"{r[3]:.4f}", f"{r[4]:.4f}", classes[r[1]], classes[r[2]]])
    atomic_write_text(path, buf.getvalue())


def plot_grid(ds, rows: list[tuple], path: Path, cols: int = 8) -> None:
    """The most suspicious images with their given and corrected labels."""
    if not rows:
        return
    n = len(rows)
    r = (n + cols - 1) // cols
    fig, axes = pyplot().subplots(r, cols, figsize=(cols * 1.3, r * 1.55), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (i, g, c, conf, _) in zip(axes.flat, rows):
        ax.imshow(ds.train.images[i].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{ds.classes[g][:8]}\n→{ds.classes[c][:8]} {100 * conf:.0f}%", fontsize=6.5)
    fig.suptitle("most suspicious labels: given → corrected (confidence)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def label_issues_for_run(run_dir: str | Path, folds: int = 3, cv_epochs: int | None = None, grid: int = 24) -> dict:
    """:func:`run` on a run directory, with positional options (for arrays: :func:`slimlab.noise.find_label_issues`)."""
    return run(LabelsConfig(str(run_dir), folds=folds, cv_epochs=cv_epochs or 0, grid=grid))
