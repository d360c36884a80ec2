"""The Python API: the public face of the use-case layer (:mod:`slimlab.tasks`).

Every command is a function of a typed config that returns its summary::

    from slimlab import api
    from slimlab.config import TrainConfig
    from slimlab.prune import PruneConfig

    summary = api.train(TrainConfig(data="digits", model="resnet20", epochs=10, out="runs/r20"))
    pruned = api.prune(PruneConfig(checkpoint="runs/r20/best.pt", method="thinet", target_macs=0.5))

``api.run_task(name, cfg)`` runs any task of the table by name. A killed run continues where it stopped:
``api.resume("runs/r20")`` (training), ``api.resume_prune("runs/r20-thinet")`` (a prune: the layers pruned so far
are kept).

Your own model, in your own training loop (any ``nn.Module``; a timm model here)::

    import timm
    from slimlab import api

    model = timm.create_model("resnet18", num_classes=10)
    model, report = api.prune_module(model, train_loader, method="thinet", target_macs=0.5, round_to=8)
    api.save_pruned(model, "r18-pruned.safetensors", model_name="timm:resnet18")
    model = api.load_pruned("r18-pruned.safetensors")  # its pruned shapes, from tensors alone

``api.train(cfg, model=my_module, data=(train_set, test_set))`` trains your module on your data with
slimlab's loop (losses for noisy labels included); ``api.resume(run_dir, model=MyNet(), data=(train_set,
test_set))`` continues such a run. Noise and label issues on your own arrays:
``api.corrupt(labels, "symmetric", 0.4, num_classes=10)``, ``api.find_label_issues(labels, pred_probs)``.
"""

from __future__ import annotations

from typing import Any

from slimlab.data import from_datasets
from slimlab.errors import SlimlabError
from slimlab.models.io import load_pruned, save_pruned
from slimlab.models.registry import allow_module
from slimlab.noise import corrupt, find_label_issues
from slimlab.prune import PruneReport, prune_module, recalibrate_bn
from slimlab.tasks.demo import DemoConfig, run_demo
from slimlab.tasks.demo import run as demo
from slimlab.tasks.evaluate import EvaluateConfig, build_eval_loader, evaluate_checkpoint
from slimlab.tasks.evaluate import run as evaluate
from slimlab.tasks.export import ExportConfig, best_run
from slimlab.tasks.export import run as export
from slimlab.tasks.labels import LabelsConfig, label_issues_for_run
from slimlab.tasks.labels import run as labels
from slimlab.tasks.models import ModelsConfig
from slimlab.tasks.models import run as models
from slimlab.tasks.pretrain import PretrainConfig
from slimlab.tasks.pretrain import run as pretrain
from slimlab.tasks.probe import ProbeConfig
from slimlab.tasks.probe import run as probe
from slimlab.tasks.profile import ProfileConfig, profile_runs
from slimlab.tasks.profile import run as profile
from slimlab.tasks.prune import corrected_labels
from slimlab.tasks.prune import resume as resume_prune
from slimlab.tasks.prune import run as prune
from slimlab.tasks.report import ReportConfig, build_report
from slimlab.tasks.report import run as report
from slimlab.tasks.run import RunConfig, check_recipe, load_recipe, run_recipe
from slimlab.tasks.run import run as recipe
from slimlab.tasks.scale import ScaleConfig
from slimlab.tasks.scale import run as scale
from slimlab.tasks.table import TASKS
from slimlab.tasks.train import resume, train

__all__ = ["PruneReport", "allow_module", "corrupt", "find_label_issues", "from_datasets", "load_pruned",
           "prune_module", "recalibrate_bn", "save_pruned", "DemoConfig", "EvaluateConfig", "ExportConfig",
           "LabelsConfig", "ModelsConfig", "PretrainConfig", "ProbeConfig", "ProfileConfig", "ReportConfig",
           "RunConfig", "ScaleConfig", "TASKS", "best_run", "build_eval_loader", "build_report", "check_recipe",
           "corrected_labels", "demo", "evaluate", "evaluate_checkpoint", "export", "label_issues_for_run", "labels",
           "load_recipe", "models", "pretrain", "probe", "profile", "profile_runs", "prune", "recipe", "report",
           "resume", "resume_prune", "run_demo", "run_recipe", "run_task", "scale", "train"]


def run_task(name: str, cfg: Any) -> dict:
    """Run the task ``name`` with its config: any of :data:`slimlab.tasks.table.TASKS`, or ``demo`` and ``run`` (a
    recipe), which sit above that table because they run other tasks."""
    above = {"demo": demo, "run": recipe}
    if name not in TASKS and name not in above:
        raise SlimlabError(f"unknown task '{name}' (known: {', '.join(sorted([*TASKS, *above]))})")
    return above[name](cfg) if name in above else TASKS[name].run(cfg)
