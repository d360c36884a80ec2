"""``slimlab pretrain``: self-supervised pretraining (RotNet); the data set's labels are never read."""

from __future__ import annotations

from dataclasses import dataclass, field

from slimlab.config import TrainConfig
from slimlab.errors import SlimlabError
from slimlab.tasks.common import to_train_config
from slimlab.tasks.train import train


@dataclass
class PretrainConfig(TrainConfig):
    """RotNet's official 4-block NIN schedule: 200 epochs, lr 0.1 x0.2 at epochs 60/120/160 (scaled to --epochs)."""

    method: str = "rotnet"  # rotnet
    model: str = "nin4"
    loss: str = "rotnet"
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.1
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "step"
    milestones: list = field(default_factory=lambda: [0.3, 0.6, 0.8])
    gamma: float = 0.2


Config = PretrainConfig


def run(cfg: PretrainConfig) -> dict:
    """``slimlab pretrain``: self-supervised pretraining (RotNet) into a run directory."""
    return train(as_train_config(cfg))


def as_train_config(cfg: PretrainConfig) -> TrainConfig:
    if cfg.method != "rotnet":
        raise SlimlabError(f"unknown pretraining method '{cfg.method}' (rotnet)")
    return to_train_config(cfg)
