"""Shared helpers for benchmarks: where the CIFAR-10 copy is, and writing results."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg"


def bench_dir(name: str) -> Path:
    """Where a benchmark keeps its runs: ``$SLIMLAB_BENCH_WORK/name`` when set (commit it between sessions), else
    ``runs/name`` in the repository. Inside the current directory it is a relative path, so that the paths runs
    record (``--init``, forward correction's estimate) hold in another worktree of a later session too."""
    work = Path(os.environ.get("SLIMLAB_BENCH_WORK") or ROOT / "runs").absolute()
    here = Path.cwd().absolute()
    return (work.relative_to(here) if work.is_relative_to(here) else work) / name


def cifar_spec() -> str:
    if not CIFAR.is_dir():
        raise SystemExit(f"the CIFAR-10 copy is not at {CIFAR}; these benchmarks need it")
    return f"imagefolder:{CIFAR}"


def machine() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "cuda": torch.cuda.is_available(),
            "date": time.strftime("%Y-%m-%d %H:%M"), **cpu_model()}


def machine_line(m: dict | None = None) -> str:
    """'CPU: <model>, N threads, training under bf16 autocast|fp32' for a table (``m``: a recorded machine())."""
    m = m or machine()
    n = m.get("threads", "?")
    return (f"CPU: {m.get('cpu_model') or m.get('cpu', '?')}, {n} thread{'' if n == 1 else 's'}, training under "
            f"{'bf16 autocast' if m.get('bf16') else 'fp32 (no bf16 instructions)'}, evaluation in fp32.")


def run_machine(summary: dict) -> dict | None:
    """A training run's own record of its machine (``summary.json``'s ``machine``, from 2026-12-03's third session)
    in :func:`machine`'s keys, or None: a table read back from finished runs names where they trained, not the
    machine that rewrote it."""
    m = summary.get("machine") or {}
    if not m.get("model"):
        return None
    return {"cpu_model": m["model"], "threads": m.get("threads"), "torch": m.get("torch"),
            "bf16": str(m.get("train_precision", "")).startswith("bf16"), "from": "the run's summary.json"}


def usual_machine(machines: list[dict]) -> dict | None:
    """Of the machines cells recorded (``machine()`` records, or run summaries' via :func:`run_machine`), the one
    most of them trained on (by CPU model and threads; its latest record), or None when none recorded one: a
    table's header then names where its cells ran, not the machine that last read them back."""
    by: dict = {}
    for m in machines:
        if m and (m.get("cpu_model") or m.get("model")):
            by.setdefault(((m.get("cpu_model") or m.get("model")), m.get("threads")), []).append(m)
    if not by:
        return None
    most = max(by.values(), key=len)
    return max(most, key=lambda m: str(m.get("date", "")))


def machines_note(machines: dict[str, dict]) -> str:
    """' Cells by CPU and training threads: A, 2: x; B, 1: y, z.' when the cells (name -> recorded machine: the
    benchmark's own ``machine()`` or a run summary's ``machine``) ran on more than one CPU or thread count; else ''.
    A cell that recorded none is listed as 'not recorded'."""
    by: dict = {}
    for name, m in machines.items():
        cpu, threads = (m.get("cpu_model") or m.get("model")), m.get("threads")
        key = f"{cpu}, {threads}" if cpu else "not recorded"
        by.setdefault(key, []).append(name)
    if list(by) == ["not recorded"]:
        return (" No cell recorded its CPU: the line above names the machine that wrote this table, not "
                "necessarily the one that trained its cells (benchmarks/results/README.md says which ran where).")
    if len(by) < 2:
        return ""
    return " Cells by CPU and training threads: " + "; ".join(f"{k}: {', '.join(sorted(n))}"
                                                              for k, n in sorted(by.items())) + "."


def cpu_model() -> dict:
    """The CPU's model name, and whether training runs under bf16 autocast here (the engine's own test:
    AVX512-BF16 or AMX; about 2x faster than fp32)."""
    from slimlab.engine.fit import cpu_has_fast_bf16, cpu_name

    return {"cpu_model": cpu_name(), "bf16": cpu_has_fast_bf16()}


def write(name: str, data: dict, table: str, trained_on: dict | None = None) -> None:
    """``RESULTS/name.json`` and ``.md``, atomically. The JSON's ``machine`` is ``trained_on`` if given, else this
    process's: a benchmark whose cells ran earlier (read back from their results) passes the machine they ran on,
    which is what the table describes, not the machine that merely rewrote it."""
    from slimlab.io import atomic_write_text

    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"machine": trained_on or machine(), **data}
    atomic_write_text(RESULTS / f"{name}.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(RESULTS / f"{name}.md", table.rstrip() + "\n")
    print(table)


def same_run(out: Path, cfg) -> None:
    """Exit with one line when ``out/config.yaml`` differs from ``cfg`` in anything that changes the result
    (epochs included: a cached 40-epoch run is no answer to a 60-epoch question)."""
    from slimlab.config import load_yaml, to_dict
    from slimlab.tasks.train import config_difference

    stored, asked = load_yaml(out / "config.yaml"), to_dict(cfg)
    diff = config_difference(stored, asked)
    if diff is None and stored.get("epochs", asked["epochs"]) != asked["epochs"]:
        diff = ("epochs", stored.get("epochs"), asked["epochs"])
    if diff is not None:
        key, was, now = diff
        raise SystemExit(f"{out} holds a run with {key} = {was!r}, this benchmark asks {now!r}: move it away "
                         "(or give the options it was run with)")


def cached_prune(cfg) -> dict:
    """``api.prune(cfg)`` into ``cfg.out`` unless a finished prune is there; one killed mid-way continues from the
    layers it had pruned (``slimlab prune --resume``). A prune there with other options stops the benchmark."""
    from slimlab import api
    from slimlab.engine.rundir import config_run_id
    from slimlab.tasks.common import options_changed
    from slimlab.tasks.prune import RESUME_MAY_CHANGE

    out = Path(cfg.out)
    if (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    if not (out / "config.yaml").is_file() or not config_run_id(out / "config.yaml"):
        return api.prune(dataclasses.replace(cfg, overwrite=True))  # never started, or by a slimlab without resume
    diff = options_changed(out, cfg, RESUME_MAY_CHANGE)
    if diff:
        raise SystemExit(f"{out} holds a prune with other options ({', '.join(diff)}): move it away")
    return api.resume_prune(out)


@contextmanager
def _flocked(lockfile: Path, wait: bool) -> Iterator[bool]:
    """An exclusive ``flock`` on ``lockfile`` while the block runs: True once held; False at once (``wait`` off)
    when another process holds it. A process that dies frees it."""
    lockfile.parent.mkdir(parents=True, exist_ok=True)
    with open(lockfile, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def claimed(cell: Path):
    """Whether this process may work on ``cell`` (a run directory): True while it holds the cell's lock, False
    when another process holds it. Two processes of one benchmark (the two queue workers) then share its cells,
    each taking the next one nobody holds. The lock is ``.NAME.claim`` beside the cell, so the run directory
    itself stays as ``slimlab`` wants it."""
    return _flocked(cell.parent / f".{cell.name}.claim", wait=False)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """``path``'s results file for this process alone while it reads, merges and writes it back (blocking)."""
    with _flocked(path.parent / f".{path.name}.lock", wait=True):
        yield


def md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def cached_train(out: Path, **kw) -> dict:
    """Train into ``out`` unless a finished run is already there (benchmarks resume where they stopped). A run
    found there with other options than ``kw`` stops the benchmark: its result would not be the one asked for."""
    from slimlab import api
    from slimlab.config import TrainConfig

    if not (out / "config.yaml").is_file():
        return api.train(TrainConfig(out=str(out), progress="log", **kw))
    same_run(out, TrainConfig(out=str(out), progress="log", **kw))
    if (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    # a run cut short continues bit-exactly from last.pt; one killed in its first epoch starts again, one killed
    # before its summary only evaluates (``slimlab train --resume`` does each)
    return api.resume(out)
