"""``slimlab probe``: train a classifier on one block of a frozen pretrained trunk (RotNet, Sec. 4.1)."""

from __future__ import annotations

from dataclasses import dataclass

from slimlab.config import TrainConfig
from slimlab.engine import checkpoint_image_size, load_checkpoint
from slimlab.errors import SlimlabError
from slimlab.models import list_models
from slimlab.tasks.common import to_train_config
from slimlab.tasks.train import train


@dataclass
class ProbeConfig(TrainConfig):
    POSITIONAL = ("checkpoint",)
    RANGES = {**TrainConfig.RANGES, "block": "[0, 16]"}
    CHOICES = {**TrainConfig.CHOICES, "head": ("linear", "mlp", "conv")}

    checkpoint: str = ""  # the pretrained trunk (.pt, run directory, or zoo:NAME)
    block: int = 0  # which block's features (1-based; NIN trunks; 0: block 2, the paper's best, on NIN)
    head: str = "linear"  # linear | mlp | conv
    data: str = ""  # data set (default: the trunk's)
    model: str = "probe"


Config = ProbeConfig


def run(cfg: ProbeConfig) -> dict:
    """``slimlab probe``: a linear, MLP or conv classifier on a frozen block of a pretrained trunk."""
    return train(as_train_config(cfg))


def as_train_config(cfg: ProbeConfig) -> TrainConfig:
    """The TrainConfig of the probe run: model ``probe`` on the checkpoint's trunk, initialised from it."""
    ck = load_checkpoint(cfg.checkpoint)
    t = to_train_config(cfg)
    t.model, t.init = "probe", ck["path"]
    trunk_cfg = ck.get("config") or {}
    if not cfg.data:  # the trunk's data set, where it lives
        t.data = trunk_cfg.get("data") or "digits"
        t.root = trunk_cfg.get("root", t.root)  # downloading stays the user's choice (--download), never the file's
    if not t.image_size:  # the size the trunk was pretrained at, unless the user asks for another
        t.image_size = checkpoint_image_size(ck, 0)
    t.model_kwargs = {"trunk": ck["model_name"], "trunk_kwargs": ck.get("model_kwargs", {}),
                      "trunk_classes": ck["num_classes"], "block": trunk_block(cfg.block, ck), "head": cfg.head,
                      "input_size": t.image_size or checkpoint_image_size(ck)}
    return t


def trunk_block(block: int, ck: dict) -> int:
    """``--block`` for the probe: NIN trunks have numbered blocks (0: block 2); other trunks are probed on their
    last feature map, so a block asked of them is one line, not ignored."""
    if block and ck["model_name"] not in list_models("nin"):
        raise SlimlabError(f"--block {block}: {ck['model_name']} has no numbered blocks (NIN trunks do); "
                           f"leave --block out to probe its last feature map")
    return block or 2
