"""Find training samples whose given label is probably wrong (``slimlab labels RUN``).

For a PENCIL run the corrected label is PENCIL's argmax y_d and the confidence its probability.
Otherwise the model's *out-of-sample* prediction is used: the training set is split into k folds
(stratified), a model with the run's config is trained on k-1 folds and predicts the held-out one,
so no sample is judged by a model that learned its (possibly wrong) label.

A sample is flagged when the corrected label differs from the given one; rows are sorted by the
suspicion score 1 - p(given label). With synthetic noise (``noise.json`` in the run), precision and
recall of the flags against the known flips are reported.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from pathlib import Path

import torch

from slimlab.errors import SlimlabError


def pencil_probs(ckpt: dict) -> torch.Tensor | None:
    yt = ckpt.get("objective", {}).get("y_tilde")
    return None if yt is None else yt.float().softmax(1)


def out_of_sample_probs(cfg, p, folds: int = 3, epochs: int | None = None) -> torch.Tensor:
    """Softmax predictions for every training sample from models that never trained on it."""
    from slimlab import data as D
    from slimlab.api import build_model, make_loaders
    from slimlab.engine import Dist, Loaders, fit, predict
    from slimlab.engine.distributed import resolve_device
    from slimlab.losses import build_objective

    n_all = len(p.ds.train)
    probs = torch.zeros(n_all, p.ds.num_classes)
    idx = p.train_idx
    g = torch.Generator().manual_seed(cfg.seed)
    fold_of = torch.empty(len(idx), dtype=torch.long)
    for c in torch.unique(p.targets[idx]).tolist():  # stratified folds
        members = torch.nonzero(p.targets[idx] == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        fold_of[members] = torch.arange(len(members)) % folds
    fcfg = dataclasses.replace(cfg, epochs=epochs or cfg.epochs, progress="none", stop_after=0, init="",
                               loss="ce" if cfg.loss == "pencil" else cfg.loss, loss_kwargs={} if cfg.loss in
                               ("pencil", "forward") else cfg.loss_kwargs)
    if fcfg.loss == "forward":
        fcfg.loss = "ce"
    # one process (the folds are small, DDP would not pay), on this rank's own device under torchrun
    ctx = Dist(device=resolve_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0"))))
    for f in range(folds):
        sub = dataclasses.replace(p, train_idx=idx[fold_of != f], val_idx=idx[:0])
        model, _ = build_model(fcfg, p.ds.num_classes)
        loaders = make_loaders(fcfg, sub, ctx)
        obj = build_objective(fcfg.loss, p.ds.num_classes, kwargs=fcfg.loss_kwargs, targets=p.targets,
                              epochs=fcfg.epochs, lr=fcfg.lr)
        fit(model, Loaders(loaders.train), obj, fcfg, None, ctx)
        held = idx[fold_of == f]
        loader = D.BatchLoader(p.ds.train, held, 512, mean=p.ds.mean, std=p.ds.std, device=ctx.device)
        pr, ix = predict(model, loader)
        probs[ix] = pr
    return probs


def find_label_issues(run_dir: str | Path, folds: int = 3, cv_epochs: int | None = None, grid: int = 24) -> dict:
    """Write ``label_issues.csv`` (+ ``label_issues.json``, ``label_issues.png``) in ``run_dir``."""
    from slimlab.api import prepare_data
    from slimlab.config import TrainConfig, from_dict, load_yaml
    from slimlab.engine import atomic_write_json, load_checkpoint

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise SlimlabError(f"not a run directory (no config.yaml): {run_dir}")
    cfg = from_dict(TrainConfig, load_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
    p = prepare_data(cfg)
    ck = load_checkpoint(run_dir / "last.pt") if (run_dir / "last.pt").is_file() else {}
    probs = pencil_probs(ck) if ck else None
    source = "pencil"
    if probs is None:
        source = f"out-of-sample ({folds}-fold)"
        probs = out_of_sample_probs(cfg, p, folds, cv_epochs)
    idx = p.train_idx
    given = p.targets[idx]
    pr = probs[idx]
    corrected = pr.argmax(1)
    confidence = pr.max(1).values
    suspicion = 1 - pr.gather(1, given[:, None]).squeeze(1)
    order = torch.argsort(suspicion, descending=True, stable=True)
    rows = [(int(idx[i]), int(given[i]), int(corrected[i]), float(confidence[i]), float(suspicion[i]))
            for i in order.tolist()]
    tmp = run_dir / ".label_issues.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "given_label", "corrected_label", "confidence", "suspicion", "given_name",
                    "corrected_name"])
        for r in rows:
            w.writerow([r[0], r[1], r[2], f"{r[3]:.4f}", f"{r[4]:.4f}", p.ds.classes[r[1]], p.ds.classes[r[2]]])
    tmp.replace(run_dir / "label_issues.csv")
    flagged = corrected != given
    report = {"source": source, "train_samples": len(idx), "flagged": int(flagged.sum()),
              "flagged_fraction": float(flagged.float().mean())}
    noise_file = run_dir / "noise.json"
    if noise_file.is_file():
        flipped_all = torch.zeros(len(p.ds.train), dtype=torch.bool)
        flipped_all[torch.tensor(json.loads(noise_file.read_text())["flipped"], dtype=torch.long)] = True
        truth = flipped_all[idx]
        tp = int((flagged & truth).sum())
        report.update(true_flips=int(truth.sum()), precision=tp / max(int(flagged.sum()), 1),
                      recall=tp / max(int(truth.sum()), 1),
                      corrected_accuracy=float((corrected == p.ds.train.targets[idx]).float().mean()),
                      given_accuracy=float((given == p.ds.train.targets[idx]).float().mean()))
    atomic_write_json(run_dir / "label_issues.json", report)
    if grid:
        plot_grid(p.ds, rows[:grid], run_dir / "label_issues.png")
    report["csv"] = str(run_dir / "label_issues.csv")
    return report


def plot_grid(ds, rows: list[tuple], path: Path, cols: int = 8) -> None:
    """The most suspicious images with their given and corrected labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    if n == 0:
        return
    r = (n + cols - 1) // cols
    fig, axes = plt.subplots(r, cols, figsize=(cols * 1.3, r * 1.55))
    for ax in axes.flat if hasattr(axes, "flat") else [axes]:
        ax.axis("off")
    for ax, (i, g, c, conf, _) in zip(axes.flat if hasattr(axes, "flat") else [axes], rows):
        ax.imshow(ds.train.images[i].permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(f"{ds.classes[g][:8]}\n→{ds.classes[c][:8]} {100 * conf:.0f}%", fontsize=6.5)
    fig.suptitle("most suspicious labels: given → corrected (confidence)", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
