"""Training loop, its objective seam, distributed plumbing, checkpoints and schedules."""

from slimlab.engine.checkpoint import (
    atomic_save,
    atomic_write_json,
    atomic_write_text,
    checkpoint_image_size,
    load_checkpoint,
)
from slimlab.engine.distributed import Dist, setup
from slimlab.engine.fit import Loaders, evaluate, fit, predict, train_one_epoch, write_summary
from slimlab.engine.objective import Objective
from slimlab.engine.optim import build_optimizer, lr_at

__all__ = ["Dist", "Loaders", "Objective", "atomic_save", "atomic_write_json", "atomic_write_text", "build_optimizer",
           "checkpoint_image_size", "evaluate", "fit", "load_checkpoint", "lr_at", "predict", "setup",
           "train_one_epoch", "write_summary"]
