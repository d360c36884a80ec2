"""``slimlab train``: train a model (any loss, noise, initialisation) into a run directory; resumable."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from slimlab.config import TrainConfig, check_ranges, dump_yaml, from_dict, load_yaml, to_dict
from slimlab.data import DataSet, from_datasets, is_named
from slimlab.engine import Dist, checkpoint_image_size, fit, load_checkpoint, setup, write_summary
from slimlab.engine.distributed import on_main
from slimlab.engine.rundir import claim, config_header, config_run_id, new_run_id, next_free, refuse_inputs_inside
from slimlab.errors import SlimlabError
from slimlab.io import atomic_write_json
from slimlab.losses import build_objective
from slimlab.models.io import resize_to_state_dict
from slimlab.profile import count_params
from slimlab.tasks.common import (
    build_model,
    data_meta,
    default_out,
    macs_or_refuse,
    make_loaders,
    plot_curves,
    prepare_data,
    refuse_other_command,
    refuse_unused_options,
    refuse_wrong_outputs,
    resume_sets,
    transition_estimator,
)

Config = TrainConfig


def train(cfg: TrainConfig | None = None, resume: dict | None = None, ctx: Dist | None = None, *,
          model: torch.nn.Module | None = None, data: DataSet | tuple | None = None) -> dict:
    """Train ``cfg`` into its run directory and return the summary (also written as summary.json).

    From Python, ``model`` is your own ``nn.Module`` (instead of ``cfg.model``) and ``data`` your own data: a
    :class:`~slimlab.data.DataSet`, or a ``(train, test)`` pair of ``(image, label)`` sequences such as
    torchvision data sets (:func:`slimlab.data.from_datasets`). The model is trained in place.

    The run owns its directory while it runs (:mod:`slimlab.engine.rundir`): a non-empty ``cfg.out``
    is refused unless ``cfg.overwrite``, and a default one that is taken gets a numbered suffix. ``cfg`` itself
    is left as given (the resolved config is the run's config.yaml), and so is torch's thread count; torch's
    global random generator is seeded with ``cfg.seed`` (as any seeded training loop does), and your model is
    left on ``cfg.device``, in channels-last memory format when ``cfg.channels_last``."""
    cfg = copy.deepcopy(cfg) if cfg is not None else TrainConfig()
    threads = torch.get_num_threads()
    try:
        return _claim_and_train(cfg, resume, ctx, model, data)
    finally:
        torch.set_num_threads(threads)


def _claim_and_train(cfg: TrainConfig, resume: dict | None, ctx: Dist | None, model: torch.nn.Module | None,
                     data: DataSet | tuple | None) -> dict:
    check_ranges(cfg)
    if resume is None:
        refuse_unused_options(cfg)
    if isinstance(data, tuple):
        data = from_datasets(*data)
    if data is not None:  # what config.yaml records: rebuilding from it must give data of this size
        cfg.data, cfg.image_size = data.name, data.image_size
    if model is not None:
        cfg.model = module_name(model)
    ctx = ctx or setup(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out).expanduser() if cfg.out else next_free(default_out(cfg))
    if cfg.overwrite and resume is None:
        refuse_inputs_inside(out, {"--init": cfg.init, "the forward correction's estimate_from":
                                   str(cfg.loss_kwargs.get("estimate_from") or "")})
    resume_id = None if resume is None else (resume.get("run_id") or new_run_id())
    # rank 0 claims the directory; a refusal stops every rank with the same line
    run_dir = on_main(lambda: claim(out, overwrite=cfg.overwrite, resume_id=resume_id), ctx)
    cfg.overwrite = False  # done: a config.yaml that says overwrite would delete a run when reused with --config
    try:
        return _train(cfg, resume, ctx, out, run_dir.run_id if run_dir else "", model, data,
                      run_dir.clear if run_dir else None)
    finally:
        if run_dir is not None:
            run_dir.release()


def module_name(model: torch.nn.Module) -> str:
    """How a checkpoint names a model that was passed as an object: ``module:pkg.mod:Class`` when its class can be
    imported again (``slimlab evaluate --allow-module pkg.mod`` rebuilds it), else ``custom:Class``."""
    cls = type(model)
    if cls.__module__ in ("__main__", "builtins") or "<locals>" in cls.__qualname__:
        return f"custom:{cls.__qualname__.replace('<locals>.', '')}"
    return f"module:{cls.__module__}:{cls.__qualname__}"


def _train(cfg: TrainConfig, resume: dict | None, ctx: Dist, out: Path, run_id: str,
           user_model: torch.nn.Module | None = None, data: DataSet | None = None, clear=None) -> dict:
    """``clear``: deletes the run --overwrite replaces, called once data, model and --init have loaded."""
    p = prepare_data(cfg, data)
    if len(p.train_idx) == 0:
        raise SlimlabError("no training images left after the subset options")
    if p.ds.num_classes < 2 and cfg.loss != "rotnet":  # RotNet's pretext never reads the labels
        raise SlimlabError(f"{p.ds.name} has {p.ds.num_classes} class: a classifier needs at least two "
                           "(a one-class model would report 100% and mean nothing)")
    transition = None if p.transition is None else torch.tensor(p.transition, dtype=torch.float32)
    objective = build_objective(cfg.loss, p.ds.num_classes, kwargs=cfg.loss_kwargs, label_smoothing=cfg.label_smoothing,
                                targets=p.targets, epochs=cfg.epochs, lr=cfg.lr, transition=transition,
                                estimate_transition_from=transition_estimator(p, ctx))
    if user_model is not None:
        # its constructor's arguments are unknown: evaluate rebuilds the class with its defaults, then gives every
        # layer the shapes stored here (as for a pruned model), so MyNet(width=8) reloads as it was trained
        model, meta = user_model, {"model_name": cfg.model, "model_kwargs": {}, "num_classes": p.ds.num_classes,
                                   "resize_on_load": True}
    else:
        model, meta = build_model(cfg, objective.num_outputs or p.ds.num_classes,
                                  None if objective.num_outputs else list(p.ds.classes))
    if resume is not None and (resume.get("pruned") or resume.get("resize_on_load")):
        resize_to_state_dict(model, resume["state_dict"])
        meta["pruned" if resume.get("pruned") else "resize_on_load"] = True
    refuse_wrong_outputs(model, cfg.model, objective.num_outputs or p.ds.num_classes, p.ds.image_size)
    cfg.out = str(out)
    meta.update(data=data_meta(p.ds), config=to_dict(cfg), run_id=run_id)
    if ctx.main:
        if clear is not None:
            clear()
        dump_yaml(cfg, out / "config.yaml", config_header(run_id))
        if p.noise:
            atomic_write_json(out / "noise.json", {"run_id": run_id, **p.noise})
    loaders = make_loaders(cfg, p, ctx)
    params, macs = count_params(model), macs_or_refuse(model, cfg.model, p.ds.image_size)
    summary = fit(model, loaders, objective, cfg, out, ctx, meta=meta, resume=resume, track_test=cfg.track_test)
    summary.update(run_id=run_id, params=params, macs=macs, model=cfg.model, data=cfg.data, loss=cfg.loss,
                   train_images=len(p.train_idx), num_classes=p.ds.num_classes, image_size=p.ds.image_size)
    if meta.get("init"):
        summary["init"] = {k: v for k, v in meta["init"].items() if k != "skipped"}
    if p.noise:
        summary["noise"] = {k: v for k, v in p.noise.items() if k not in ("flipped", "transition")}
    if ctx.main:
        write_summary(out, summary)
        plot_curves(out)
    summary["out"] = str(out)
    summary["rank"] = ctx.rank
    return summary


# what a resume may change: how long and where it runs, not what it computes
RESUME_MAY_CHANGE = ("epochs", "stop_after", "progress", "threads", "device", "root", "download", "diverge_factor",
                     "compile", "eval_every", "track_test", "log")
WHERE = ("out", "overwrite")  # where a run writes, never what it computes (a resume keeps its own folder)


def config_difference(a: dict, b: dict) -> tuple[str, object, object] | None:
    """The first option two training configs disagree on, among those that change what a run computes (options
    missing from one side, written by an older slimlab, count as their defaults); None if they are one run's."""
    defaults = to_dict(TrainConfig())
    for key in sorted(set(a) | set(b)):
        if key in RESUME_MAY_CHANGE or key in WHERE:
            continue
        va, vb = a.get(key, defaults.get(key)), b.get(key, defaults.get(key))
        if va != vb:
            return key, va, vb
    return None


def resume(run_dir: str | Path, sets: list[str] | None = None, *, model: torch.nn.Module | None = None,
           data: DataSet | tuple | None = None) -> dict:
    """Continue a killed run from ``run_dir/last.pt`` with its own config.yaml.

    Only the run that wrote ``last.pt`` is continued: a config.yaml or run id that differs from the
    checkpoint's (a directory two runs wrote into) is refused, and so is ``--set`` of an option that
    changes what the run computes. A run of :func:`train` with your own ``model`` or ``data`` continues with
    them given again (a fresh instance of the model's class; data with the same classes and images)."""
    run_dir = Path(run_dir).expanduser()
    if not (run_dir / "config.yaml").is_file():
        raise SlimlabError(f"not a run directory (no config.yaml): {run_dir}")
    raw = load_yaml(run_dir / "config.yaml")
    refuse_other_command(raw, run_dir, "train")
    written = dict(raw)
    sets_ = resume_sets(sets, RESUME_MAY_CHANGE)
    raw.update(sets_)
    if "stop_after" not in sets_:
        raw["stop_after"] = 0  # a resumed run goes to the end unless told otherwise
    cfg = from_dict(TrainConfig, raw, str(run_dir / "config.yaml"))
    cfg.out = str(run_dir)
    data = _given_again(cfg, run_dir, model, data)
    last = run_dir / "last.pt"
    if not last.is_file():  # killed before the first epoch ended: start that run over
        if (run_dir / "summary.json").is_file():
            raise SlimlabError(f"{run_dir} has a summary.json but no last.pt: not a run that can be resumed")
        if not config_run_id(run_dir / "config.yaml"):
            raise SlimlabError(f"{run_dir}/config.yaml is not a run's (no run header line): nothing to resume")
        cfg.overwrite = True
        return train(cfg, model=model, data=data)
    ck = load_checkpoint(last)
    _same_run(run_dir, written, ck)
    if data is not None and data_meta(data) != ck.get("data"):
        raise SlimlabError(f"{run_dir} trained on other data than the data given (its classes, image size or "
                           "images' mean and std differ): give the same train set it was started with")
    trained_at = checkpoint_image_size(ck, 0)
    if cfg.image_size and trained_at and trained_at != cfg.image_size:
        cfg.image_size = trained_at  # cifar ignored --image-size before 2026-12-03: it goes on at the size it had
    if ck["epoch"] > cfg.epochs:
        raise SlimlabError(f"{run_dir} already trained {ck['epoch']} epochs: --set epochs={cfg.epochs} would make its "
                           "config.yaml say fewer than it ran (give at least that many)")
    if ck["epoch"] >= cfg.epochs and (run_dir / "summary.json").is_file():
        raise SlimlabError(f"{run_dir} already finished its {cfg.epochs} epochs (raise them with --set epochs=N)")
    # killed after the last epoch's checkpoint but before summary.json: training resumes with no epoch left and
    # only the closing evaluation and summary run
    return train(cfg, resume=ck, model=model, data=data)


def _given_again(cfg: TrainConfig, run_dir: Path, model: torch.nn.Module | None,
                 data: DataSet | tuple | None) -> DataSet | None:
    """The model and data a run of ``train(model=..., data=...)`` needs again, checked against its config."""
    call = f'api.resume("{run_dir}", model=..., data=(train, test))'
    if cfg.model.startswith("custom:") and model is None:
        raise SlimlabError(f"{run_dir} trained a model given from Python ({cfg.model}): resume it from Python with "
                           f"a fresh instance, {call}")
    if model is not None and module_name(model) != cfg.model:
        raise SlimlabError(f"{run_dir} trained {cfg.model}, not {module_name(model)}: give a model of its class")
    if data is None:
        if not is_named(cfg.data):
            raise SlimlabError(f"{run_dir} trained on data given from Python ('{cfg.data}'): resume it from Python "
                               f"with that data again, {call}")
        return None
    data = from_datasets(*data) if isinstance(data, tuple) else data
    if is_named(cfg.data) or data.name != cfg.data:
        raise SlimlabError(f"{run_dir} trained on {cfg.data}, not on data given from Python ('{data.name}'): "
                           "resume it without data")
    return data


def _same_run(run_dir: Path, written: dict, ck: dict) -> None:
    """Refuse a directory whose config.yaml and last.pt come from different runs."""
    yaml_id, ck_id = config_run_id(run_dir / "config.yaml"), ck.get("run_id")
    if yaml_id and ck_id and yaml_id != ck_id:
        raise SlimlabError(f"{run_dir} mixes two runs: last.pt is from run {ck_id}, config.yaml from run {yaml_id}; "
                           "start over with --overwrite or choose another --out")
    diff = config_difference(written, ck.get("config") or {})
    if diff is not None:
        key, a, b = diff
        raise SlimlabError(f"{run_dir}: config.yaml does not match the run that wrote last.pt ({key}: {a!r} in "
                           f"config.yaml, {b!r} in last.pt); start over with --overwrite")


run = train
