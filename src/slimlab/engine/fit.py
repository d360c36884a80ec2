"""The one training loop every command runs through.

``fit`` trains a model with an :class:`~slimlab.engine.objective.Objective` and writes a run
directory: ``metrics.jsonl`` (a line per epoch), ``last.pt`` and ``best.pt`` (atomic), and
``summary.json``. It knows nothing about any method: RotNet's rotations, PENCIL's label variables
and robust losses all live behind the objective.

Exact resume: the learning rate is a function of the step, shuffling and augmentation are seeded
by (seed, epoch), and torch's global RNG is re-seeded at every epoch start, so continuing from
``last.pt`` gives the same weights as a run that was never interrupted (on CPU).
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from slimlab.config import to_dict
from slimlab.engine.checkpoint import FORMAT, atomic_save, atomic_write_json, load_checkpoint
from slimlab.engine.distributed import Dist, all_gather_cat, all_reduce_sum, any_rank
from slimlab.engine.loggers import open_loggers
from slimlab.engine.objective import Objective
from slimlab.engine.optim import build_optimizer, lr_at
from slimlab.errors import SlimlabError
from slimlab.io import read_jsonl


def refuse_non_tensor(out: object, name: str) -> None:
    """One line when a model's forward returns something else than one tensor of class scores (a tuple of
    auxiliary heads, a dict): the loop would not know which output to train."""
    if not isinstance(out, torch.Tensor):
        raise SlimlabError(f"{name} returns a {type(out).__name__}, not one tensor of class scores: wrap it so that "
                           "forward returns the [N, K] logits (e.g. its first output, or out['logits'])")


@dataclass
class Loaders:
    train: Any
    val: Any = None
    test: Any = None


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matrix units (AMX or AVX512-BF16), where bf16 autocast pays off."""
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:  # an older torch without the probes
        return False


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s, else what ``platform`` knows)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "")
    return name or platform.processor() or platform.machine()


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA, and on CPUs with native bf16 (measured 1.4x on ResNet-20 with AMX); else fp32."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if enabled and device.type == "cpu" and cpu_has_fast_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, loader, ctx: Dist | None = None, amp: bool = False, prepare=None) -> dict:
    """Accuracy and mean cross-entropy of ``model`` on ``loader`` (summed over DDP ranks).

    ``prepare`` transforms each batch first (RotNet evaluates its pretext task on rotated batches)."""
    ctx = ctx or Dist()
    was = model.training
    model.eval()
    loss_sum, correct, n = 0.0, 0.0, 0.0
    device = next(model.parameters()).device
    for batch in loader:
        if prepare is not None:
            batch = prepare(batch)
        with autocast(device, amp):
            logits = model(batch["image"]).float()
        loss_sum += F.cross_entropy(logits, batch["target"], reduction="sum").item()
        correct += (logits.argmax(1) == batch["target"]).sum().item()
        n += batch["target"].numel()
    model.train(was)
    loss_sum, correct, n = all_reduce_sum([loss_sum, correct, n], ctx)
    return {"loss": loss_sum / max(n, 1), "acc": correct / max(n, 1), "n": int(n)}


@torch.no_grad()
def predict(model: nn.Module, loader, ctx: Dist | None = None, amp: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities and sample indices over ``loader`` (gathered from all ranks)."""
    ctx = ctx or Dist()
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    probs, idx = [], []
    for batch in loader:
        with autocast(device, amp):
            probs.append(model(batch["image"]).float().softmax(1))
        idx.append(batch["index"])
    model.train(was)
    p, i = torch.cat(probs), torch.cat(idx)
    return all_gather_cat(p, ctx).cpu(), all_gather_cat(i, ctx).cpu()


class Progress:
    """A tqdm bar per epoch on a terminal; one plain line per epoch otherwise."""

    def __init__(self, mode: str, epochs: int, enabled: bool = True):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode if enabled else "none"
        self.epochs = epochs
        self.bar = None

    def start_epoch(self, epoch: int, steps: int) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{self.epochs}", file=sys.stderr, leave=False,
                            dynamic_ncols=True)

    def step(self, loss: float, acc: float, ips: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.3f} acc {100 * acc:.1f}% {ips:.0f} img/s", refresh=False)
            self.bar.update(1)

    def end_epoch(self, m: dict, eta_s: float) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.mode == "none":
            return
        val = f" val {100 * m['val_acc']:.2f}%" if m.get("val_acc") is not None else ""
        test = f" test {100 * m['test_acc']:.2f}%" if m.get("test_acc") is not None else ""
        print(f"epoch {m['epoch']}/{self.epochs} loss {m['train_loss']:.4f} acc {100 * m['train_acc']:.2f}%"
              f"{val}{test} lr {m['lr']:.4g} {m['images_per_s']:.0f} img/s {m['epoch_s']:.1f}s"
              f" eta {_fmt_s(eta_s)}", file=sys.stderr, flush=True)


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def checkpoint_payload(model: nn.Module, meta: dict, **extra) -> dict:
    """A checkpoint of ``model``; refused (one line) when a weight or a BN statistic is NaN or inf, so no command
    (training, pruning, fine-tuning, pre-training) ever writes a checkpoint that cannot be used."""
    bad = first_non_finite(model)
    if bad is not None:
        raise SlimlabError(f"not writing a checkpoint: '{bad}' holds NaN or inf")
    return {"format": FORMAT, **meta, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **extra}


@dataclass
class _State:
    """What the loop carries from epoch to epoch (and restores on resume)."""

    start: int = 0
    best: float = -1.0
    best_epoch: int = 0
    best_state: dict | None = None
    history: list = field(default_factory=list)
    last_val: dict | None = None
    epochs_done: int = 0
    train_time: float = 0.0
    train_images: int = 0


def fit(model: nn.Module, loaders: Loaders, objective: Objective, cfg, run_dir: str | Path | None,
        ctx: Dist | None = None, meta: dict | None = None, resume: dict | None = None,
        track_test: bool = False) -> dict:
    """Train ``model`` for ``cfg.epochs`` epochs and return the run's summary.

    ``cfg`` is a :class:`~slimlab.config.TrainConfig` (optimiser, schedule, execution options).
    ``meta`` is stored in every checkpoint (model name and arguments, data statistics, config) so
    that a checkpoint is self-describing. ``resume`` is a loaded ``last.pt`` to continue from.
    """
    ctx = ctx or Dist()
    meta = dict(meta or {})
    meta.setdefault("config", to_dict(cfg))
    run_dir = Path(run_dir) if run_dir else None
    writes = ctx.main and run_dir is not None
    model = _prepare_model(model, cfg, ctx)
    opt = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay,
                          no_decay_1d=not getattr(cfg, "decay_norm_and_bias", False))
    objective.bind(ctx)
    objective.to(ctx.device)
    st = _restore(model, opt, objective, resume, run_dir)
    train_model = _wrap_for_training(model, cfg, ctx)
    if writes:
        run_dir.mkdir(parents=True, exist_ok=True)
        _rewrite_metrics(run_dir, st.history)
    progress = Progress(cfg.progress, cfg.epochs, enabled=ctx.main)
    if writes and progress.mode != "none":  # where the run goes, before its first line (an interrupt names it too)
        print(f"run directory: {run_dir}" + (f" (resuming at epoch {st.start + 1})" if st.start else ""),
              file=sys.stderr, flush=True)
    if len(loaders.train) == 0:
        raise SlimlabError("the training set is empty")
    t_run = time.time() - _elapsed(st.history)  # a resumed run's clock goes on from its earlier processes
    with open_loggers(list(getattr(cfg, "log", None) or []), run_dir if writes else None) as log:
        for epoch in range(st.start, cfg.epochs):
            t0 = time.time()
            m = train_one_epoch(train_model, loaders.train, objective, opt, cfg, epoch, ctx, progress)
            st.train_time += m["epoch_s"]
            st.train_images += m.pop("_seen")
            _evaluate_epoch(model, loaders, objective, cfg, epoch, ctx, track_test, m, st)
            check_divergence(model, m, st.history, getattr(cfg, "diverge_factor", 0.0), ctx)
            m["elapsed_s"] = time.time() - t_run
            _end_epoch(model, opt, objective, meta, m, st, run_dir if writes else None, loaders.val is not None)
            log(m)
            progress.end_epoch(m, (time.time() - t0) * (cfg.epochs - epoch - 1))
            if cfg.stop_after and epoch + 1 >= cfg.stop_after and epoch + 1 < cfg.epochs:
                break
    summary = _final_summary(model, loaders, objective, cfg, ctx, track_test, st)
    if ctx.enabled and cfg.sync_bn:
        from slimlab.engine.sync_bn import revert_sync_batchnorm

        revert_sync_batchnorm(model)  # hand the caller back a model with plain BatchNorm2d layers
    summary.update(wall_s=time.time() - t_run, train_s=st.train_time,
                   images_per_s=st.train_images / max(st.train_time, 1e-9), world_size=ctx.world,
                   device=str(ctx.device), machine=machine(ctx.device, cfg.amp))
    return summary


def machine(device: torch.device, amp: bool) -> dict[str, Any]:
    """Where the run finished: the CPU (or GPU) model, threads, and whether it trained under bf16 autocast (a
    table of runs from several machines can then say which ran where)."""
    name = (torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name() if device.type == "cpu"
            else f"{device.type} device")  # mps, xpu: the accelerator, not the host's CPU
    bf16 = amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()))
    return {"model": name, "threads": torch.get_num_threads(), "train_precision": "bf16 autocast" if bf16 else "fp32",
            "torch": torch.__version__}


def _prepare_model(model: nn.Module, cfg, ctx: Dist) -> nn.Module:
    model.to(ctx.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if ctx.enabled and cfg.sync_bn:
        from slimlab.engine.sync_bn import convert_sync_batchnorm

        model = convert_sync_batchnorm(model, ctx.device.type == "cuda")
    return model


def _wrap_for_training(model: nn.Module, cfg, ctx: Dist) -> nn.Module:
    """DDP and ``torch.compile`` wrap the model used for training steps; evaluation uses the bare one."""
    train_model: nn.Module = model
    if ctx.enabled:
        cuda = ctx.device.type == "cuda"
        train_model = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if cuda else None)
    if cfg.compile:
        train_model = torch.compile(train_model)
    return train_model


def _load_optimizer(opt, sd, where: str) -> None:
    """Load a checkpoint's optimiser state, checked first: its groups and every per-parameter tensor (momentum,
    Adam's moments) must fit this model's parameters, or one line says why it cannot be resumed."""
    bad = f"{where} cannot be resumed: its optimizer state "
    if not (isinstance(sd, dict) and isinstance(sd.get("state"), dict) and isinstance(sd.get("param_groups"), list)):
        raise SlimlabError(bad + "is not an optimizer state (state, param_groups)")
    params = [p for g in opt.param_groups for p in g["params"]]
    ids = [i for g in sd["param_groups"] if isinstance(g, dict) for i in (g.get("params") or [])]
    if len(sd["param_groups"]) != len(opt.param_groups) or len(ids) != len(params):
        raise SlimlabError(bad + f"has {len(ids)} parameters in {len(sd['param_groups'])} groups, the model "
                           f"{len(params)} in {len(opt.param_groups)}")
    by_id = dict(zip(ids, params))
    for pid, st in sd["state"].items():
        if pid not in by_id or not isinstance(st, dict):
            raise SlimlabError(bad + f"names parameter {pid!r}, which the model does not have")
        for key, t in st.items():
            if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape != by_id[pid].shape:
                raise SlimlabError(bad + f"holds {key} of shape {tuple(t.shape)} for a parameter of shape "
                                   f"{tuple(by_id[pid].shape)}")
    try:
        opt.load_state_dict(sd)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise SlimlabError(bad + f"does not load: {str(e).splitlines()[0][:160]}") from None


def _restore(model: nn.Module, opt, objective: Objective, resume: dict | None, run_dir: Path | None) -> _State:
    """The loop's state from a loaded ``last.pt`` (and its run directory), or a fresh one."""
    st = _State()
    if resume is None:
        return st
    where = resume.get("path", "last.pt")
    missing = [k for k in ("optimizer", "epoch", "best_val_acc") if k not in resume]
    if missing:
        raise SlimlabError(f"{where} cannot be resumed: it lacks {', '.join(missing)} (is it a best.pt?)")
    _check_same_shapes(model, resume["state_dict"], where)
    model.load_state_dict(resume["state_dict"])
    _load_optimizer(opt, resume["optimizer"], where)
    objective.load_state_dict(resume.get("objective", {}))
    st.start, st.best = int(resume["epoch"]), float(resume["best_val_acc"])
    st.best_epoch, st.epochs_done = int(resume.get("best_epoch", 0)), st.start
    if run_dir is not None:
        rid = resume.get("run_id")
        st.history = [h for h in read_jsonl(run_dir / "metrics.jsonl")
                      if isinstance(h.get("epoch"), int) and h["epoch"] <= st.start and h.get("run_id", rid) == rid]
        st.train_time = sum(float(h.get("epoch_s", 0.0)) for h in st.history)
        st.train_images = round(sum(float(h.get("epoch_s", 0.0)) * float(h.get("images_per_s", 0.0))
                                    for h in st.history))
    if run_dir is not None and st.best_epoch and (run_dir / "best.pt").is_file():
        best = load_checkpoint(run_dir / "best.pt")  # test_acc_at_best_val needs it
        if best.get("run_id") != resume.get("run_id"):
            raise SlimlabError(f"{run_dir} mixes two runs: best.pt is from run {best.get('run_id')}, last.pt from run "
                               f"{resume.get('run_id')}; start over with --overwrite")
        _check_same_shapes(model, best["state_dict"], best["path"])
        st.best_state = best["state_dict"]
    return st


def _elapsed(history: list[dict]) -> float:
    """Seconds the run had taken by its last recorded epoch (runs written before ``elapsed_s``: its epochs' time)."""
    if not history:
        return 0.0
    last = history[-1].get("elapsed_s")
    return float(last) if last is not None else sum(float(h.get("epoch_s", 0.0)) for h in history)


def _check_same_shapes(model: nn.Module, sd: dict, where: str) -> None:
    own = model.state_dict()
    if set(own) != set(sd) or any(own[k].shape != sd[k].shape for k in own):
        raise SlimlabError(f"{where} holds another architecture than the run's model (config.yaml and the "
                           "checkpoint disagree): start over with --overwrite")


def train_one_epoch(model: nn.Module, loader, objective: Objective, opt, cfg, epoch: int, ctx: Dist,
                    progress: Progress | None = None) -> dict:
    """One pass over ``loader``: returns the epoch's metrics line (lr, train loss and accuracy, timing)."""
    torch.manual_seed(cfg.seed * 1000003 + epoch)  # exact resume: the global RNG depends on the epoch only
    loader.set_epoch(epoch)
    if objective.wants_train_predictions(epoch):
        probs, index = predict(model, loader.unaugmented(), ctx, _eval_amp(cfg, ctx))
        objective.on_train_predictions(epoch, probs, index, loader.targets[index])
    objective.on_epoch_start(epoch)
    model.train()
    n_steps = len(loader)
    if progress is not None:
        progress.start_epoch(epoch, n_steps)
    t0 = time.time()
    loss_sum = correct = seen = 0.0
    lr = cfg.lr
    for i, batch in enumerate(loader):
        lr = _set_lr(opt, objective, cfg, epoch + i / n_steps)
        batch = objective.prepare(batch)
        with autocast(ctx.device, cfg.amp):
            logits = model(batch["image"])
        refuse_non_tensor(logits, "the model")
        loss = objective.loss(logits.float(), batch, epoch)
        _check_finite(loss, epoch, i, ctx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if getattr(cfg, "clip_grad_norm", 0.0) > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
        opt.step()
        objective.after_step(batch)
        b = batch["target"].shape[0]
        loss_sum += loss.item() * b
        correct += (logits.detach().argmax(1) == batch["target"]).sum().item()
        seen += b
        if progress is not None:
            progress.step(loss_sum / seen, correct / seen, seen * ctx.world / max(time.time() - t0, 1e-9))
    epoch_s = time.time() - t0
    loss_sum, correct, seen = all_reduce_sum([loss_sum, correct, seen], ctx)
    return {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen, "train_acc": correct / seen,
            "epoch_s": epoch_s, "images_per_s": seen / max(epoch_s, 1e-9), "_seen": int(seen)}


def _set_lr(opt, objective: Objective, cfg, epoch_float: float) -> float:
    lr = objective.lr_at(epoch_float)
    if lr is None:
        lr = lr_at(epoch_float, cfg.lr, cfg.epochs, cfg.schedule, cfg.milestones, cfg.gamma, cfg.warmup_epochs)
    for g in opt.param_groups:
        g["lr"] = lr
    return lr


def _check_finite(loss: torch.Tensor, epoch: int, step: int, ctx: Dist) -> None:
    finite = bool(torch.isfinite(loss))
    if ctx.enabled:  # every rank must stop together, or the others wait forever in backward
        finite = all_reduce_sum([float(not finite)], ctx)[0] == 0
    if not finite:
        raise SlimlabError(f"the loss became non-finite at epoch {epoch + 1}, step {step + 1}: "
                           "lower --lr or check the data")


def first_non_finite(model: nn.Module) -> str | None:
    """The name of the first weight or buffer (BN statistics included) holding NaN or inf, or None."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def check_divergence(model: nn.Module, m: dict, history: list[dict], factor: float, ctx: Dist | None = None) -> None:
    """Stop a run whose weights or BN statistics went non-finite, or whose epoch loss grew past ``factor`` times
    the first epoch's. Runs before the epoch's checkpoints are written, so the last good ones are kept. Under DDP
    every rank stops together (BN statistics differ between ranks)."""
    bad = first_non_finite(model)
    if any_rank(bad is not None, ctx or Dist()):
        bad = bad or "a BatchNorm statistic of another rank"
        raise SlimlabError(f"training diverged in epoch {m['epoch']}: {bad} holds NaN or inf (the checkpoints of "
                           "the last good epoch are kept); lower --lr")
    first = history[0].get("train_loss") if history else None
    if factor and first and first > 0 and m["train_loss"] > factor * first:
        raise SlimlabError(f"training diverged in epoch {m['epoch']}: its loss {m['train_loss']:.4g} is over "
                           f"{factor:g}x the first epoch's {first:.4g} (the checkpoints of the last good epoch are "
                           "kept); lower --lr, or raise --diverge-factor")


def _eval_amp(cfg, ctx: Dist) -> bool:
    """bf16 evaluation on CUDA only: on CPU it stays fp32, so `slimlab evaluate` reproduces the figures."""
    return cfg.amp and ctx.device.type == "cuda"


def _evaluate_epoch(model: nn.Module, loaders: Loaders, objective: Objective, cfg, epoch: int, ctx: Dist,
                    track_test: bool, m: dict, st: _State) -> None:
    """Validation (every ``eval_every`` epochs and at the end) and, with ``track_test``, the test set."""
    amp = _eval_amp(cfg, ctx)
    if not ((epoch + 1) % max(1, cfg.eval_every) == 0 or epoch + 1 == cfg.epochs):
        return
    if loaders.val is not None:
        st.last_val = evaluate(model, loaders.val, ctx, amp, objective.prepare_eval)
        m["val_loss"], m["val_acc"] = st.last_val["loss"], st.last_val["acc"]
    if track_test and loaders.test is not None:
        m["test_acc"] = evaluate(model, loaders.test, ctx, amp, objective.prepare_eval)["acc"]


def _end_epoch(model: nn.Module, opt, objective: Objective, meta: dict, m: dict, st: _State,
               run_dir: Path | None, has_val: bool) -> None:
    """Track the best epoch (validation accuracy, or training accuracy without a validation split) and write."""
    if meta.get("run_id"):
        m["run_id"] = meta["run_id"]
    st.history.append(m)
    score = m.get("val_acc") if has_val else m["train_acc"]
    improved = score is not None and score > st.best
    if improved:
        st.best, st.best_epoch = score, m["epoch"]
        st.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    st.epochs_done = m["epoch"]
    if run_dir is None:
        return
    _rewrite_metrics(run_dir, st.history)  # atomically: a kill never leaves a torn line
    state = checkpoint_payload(model, meta, epoch=m["epoch"], best_val_acc=st.best, best_epoch=st.best_epoch,
                               objective=objective.state_dict())
    if improved:
        atomic_save(state, run_dir / "best.pt")
    state["optimizer"] = opt.state_dict()
    atomic_save(state, run_dir / "last.pt")


def _final_summary(model: nn.Module, loaders: Loaders, objective: Objective, cfg, ctx: Dist, track_test: bool,
                   st: _State) -> dict[str, Any]:
    amp = _eval_amp(cfg, ctx)
    summary: dict[str, Any] = {"epochs": cfg.epochs, "epochs_done": st.epochs_done,  # fewer with --stop-after
                               "best_val_acc": st.best if st.best >= 0 else None, "best_epoch": st.best_epoch,
                               # without a validation split the best epoch is chosen by training accuracy
                               "best_on": "validation" if loaders.val is not None else "training"}
    if st.history:
        summary["final_train_acc"] = st.history[-1]["train_acc"]
        summary["final_val_acc"] = st.history[-1].get("val_acc")
    if loaders.test is None:
        return summary
    summary["test_acc"] = evaluate(model, loaders.test, ctx, amp, objective.prepare_eval)["acc"]
    if track_test:
        accs = [h["test_acc"] for h in st.history if "test_acc" in h]
        summary["best_test_acc"] = max(accs) if accs else None
    if st.best_state is not None and st.best_epoch != st.epochs_done:
        final = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(st.best_state)
        summary["test_acc_at_best_val"] = evaluate(model, loaders.test, ctx, amp, objective.prepare_eval)["acc"]
        model.load_state_dict(final)
    elif st.best_epoch == st.epochs_done:
        summary["test_acc_at_best_val"] = summary["test_acc"]
    return summary


def _rewrite_metrics(run_dir: Path, history: list[dict]) -> None:
    from slimlab.engine.checkpoint import atomic_write_text

    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))


def write_summary(run_dir: str | Path, summary: dict) -> None:
    atomic_write_json(Path(run_dir) / "summary.json", _clean(summary))


def _clean(o: Any) -> Any:
    if isinstance(o, float) and (math.isnan(o) or math.isinf(o)):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o
