"""Experiment loggers: where a run's per-epoch metrics go besides ``metrics.jsonl``.

A logger is a small interface, ``log_epoch(metrics: dict)`` and ``close()``, built from the run
directory by a factory registered under a name (``--log NAME``, repeatable). slimlab ships
``tensorboard`` (TensorBoard event files in ``RUN_DIR/tensorboard/``, through
``torch.utils.tensorboard``; the ``tensorboard`` package is optional). Another one plugs in with
``register_logger("mine", lambda run_dir: MyLogger(run_dir))``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from slimlab.errors import SlimlabError


class Logger(Protocol):
    def log_epoch(self, metrics: dict) -> None: ...

    def close(self) -> None: ...


_LOGGERS: dict[str, Callable[[Path], Logger]] = {}


def register_logger(name: str, factory: Callable[[Path], Logger]) -> None:
    _LOGGERS[name] = factory


def logger_names() -> list[str]:
    return sorted(_LOGGERS)


class TensorBoardLogger:
    """Scalars of every epoch (losses, accuracies, learning rate, throughput) as TensorBoard events."""

    def __init__(self, run_dir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise SlimlabError("--log tensorboard needs the tensorboard package (pip install tensorboard)") from None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log_epoch(self, metrics: dict) -> None:
        step = int(metrics["epoch"])
        for key, v in metrics.items():
            if key != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool):
                group = "accuracy" if key.endswith("_acc") else "loss" if key.endswith("_loss") else "run"
                self.writer.add_scalar(f"{group}/{key}", v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


register_logger("tensorboard", TensorBoardLogger)


def check_loggers(names: list[str]) -> None:
    unknown = [n for n in names if n not in _LOGGERS]
    if unknown:
        raise SlimlabError(f"unknown logger(s) {', '.join(map(str, unknown))} "
                           f"(choose from {', '.join(logger_names())})")


@contextmanager
def open_loggers(names: list[str], run_dir: Path | None):
    """A function that sends one epoch's metrics to every logger of ``names`` (none without a run directory)."""
    check_loggers(names)
    loggers = [_LOGGERS[n](run_dir) for n in dict.fromkeys(names)] if run_dir is not None else []
    try:
        yield lambda m: [lg.log_epoch(m) for lg in loggers]
    finally:
        for lg in loggers:
            lg.close()
