"""The one table of tasks: the CLI and the recipe runner both dispatch through it.

A :class:`Task` is a typed config (a dataclass whose field comments are the CLI help) and a
``run(cfg) -> summary`` function. Train-like tasks also say how to turn their config into a
:class:`~slimlab.config.TrainConfig`, so that a recipe step killed mid-way resumes its run.
The recipe runner and the demo are tasks too, but sit above this table (they run other tasks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slimlab.errors import SlimlabError
from slimlab.tasks import evaluate, export, labels, models, pretrain, probe, profile, prune, report, scale, train


@dataclass(frozen=True)
class Task:
    name: str
    config: type
    run: Callable[[Any], dict]
    help: str
    cli_skip: tuple[str, ...] = ()  # config fields the command line does not offer
    as_train_config: Callable[[Any], Any] | None = None  # train-like: the run's TrainConfig
    resume: Callable[..., dict] | None = None  # (run_dir, sets) -> summary: ``--resume`` continues a killed run
    resume_may_change: tuple[str, ...] = ()  # the options ``--set`` may change on ``--resume``
    preset: dict = field(default_factory=dict)


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("train", train.Config, train.run, "train a model (any loss, noise, init), resumable",
         as_train_config=lambda c: c, resume=train.resume, resume_may_change=train.RESUME_MAY_CHANGE),
    Task("evaluate", evaluate.Config, evaluate.run, "test accuracy of a checkpoint"),
    Task("models", models.Config, models.run, "the model registry with params and MACs"),
    Task("profile", profile.Config, profile.run, "params, multiply-adds and latency of a model or checkpoint, or of "
         "runs (--runs A B C) timed interleaved"),
    Task("prune", prune.Config, prune.run,
         "structural filter pruning (ThiNet, APoZ, weight sum, random) + fine-tuning, resumable",
         resume=prune.resume, resume_may_change=prune.RESUME_MAY_CHANGE),
    Task("pretrain", pretrain.Config, pretrain.run, "self-supervised pretraining (RotNet); labels are never read",
         cli_skip=("loss",), as_train_config=pretrain.as_train_config),
    Task("probe", probe.Config, probe.run, "train a classifier on one block of a frozen pretrained trunk",
         cli_skip=("model", "model_kwargs", "init"), as_train_config=probe.as_train_config),
    Task("labels", labels.Config, labels.run, "flag suspicious training labels of a run (label_issues.csv)"),
    Task("scale", scale.Config, scale.run, "EfficientNet compound scaling: grid search (step 1) or apply (step 2)"),
    Task("export", export.Config, export.run,
         "export a run's model to ONNX (checked with ONNX Runtime) or TorchScript"),
    Task("report", report.Config, report.run, "one self-contained HTML page (or Markdown) over run directories"),
)}

# recipe step kinds that are a task with preset options
KINDS: dict[str, tuple[str, dict]] = {"scale_search": ("scale", {"action": "search"})}


def task_for_kind(kind: str) -> tuple[Task, dict]:
    """The task of a recipe step kind, with the options the kind presets."""
    if kind in KINDS:
        name, preset = KINDS[kind]
        return TASKS[name], dict(preset)
    if kind not in TASKS:
        raise SlimlabError(f"unknown step kind '{kind}' (choose from {', '.join(sorted([*TASKS, *KINDS]))})")
    return TASKS[kind], {}
