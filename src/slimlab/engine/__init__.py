"""Training loop, distributed plumbing, checkpoints and schedules."""

from slimlab.engine.checkpoint import atomic_save, atomic_write_json, atomic_write_text, load_checkpoint
from slimlab.engine.distributed import Dist, setup
from slimlab.engine.fit import Loaders, evaluate, fit, predict, write_summary
from slimlab.engine.optim import build_optimizer, lr_at

__all__ = ["Dist", "Loaders", "atomic_save", "atomic_write_json", "atomic_write_text", "build_optimizer",
           "evaluate", "fit", "load_checkpoint", "lr_at", "predict", "setup", "write_summary"]
