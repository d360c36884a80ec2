"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018, arXiv 1803.07728): learn features by predicting
which of four rotations (0, 90, 180, 270 degrees) was applied to an image.

Every image of a batch appears in all four rotations in the same batch, as in the official code
(the paper, Sec. 3.2: this works better than one random rotation per image). Rotations are exact
tensor ops (``torch.rot90``: flips and transposes), with no interpolation. The loss is the 4-way
cross-entropy of Eq. 1-2; the data set's labels are never read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slimlab.engine.objective import Objective

# The official 4-block NIN schedule: 200 epochs, batch 128, SGD Nesterov, wd 5e-4, lr 0.1 x0.2 at 60/120/160
ROTNET_DEFAULTS = {"model": "nin4", "loss": "rotnet", "epochs": 200, "batch_size": 128, "optimizer": "sgd",
                   "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "schedule": "step",
                   "milestones": [0.3, 0.6, 0.8], "gamma": 0.2}


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, C, H, W] -> ([4B, C, H, W], labels): rows k*B..(k+1)*B-1 are ``rot90(images, k, dims=(-2, -1))``."""
    if images.shape[-1] != images.shape[-2]:
        raise ValueError("RotNet needs square images")
    b = images.shape[0]
    rotated = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])
    labels = torch.arange(4, device=images.device).repeat_interleave(b)
    return rotated, labels


class RotNetObjective(Objective):
    """The pretext task as an objective: 4B rotated images, rotation labels, 4-way cross-entropy."""

    name = "rotnet"
    num_outputs = 4

    def prepare(self, batch: dict) -> dict:
        x, y = rotate_batch(batch["image"])
        return {"image": x, "target": y, "index": batch["index"].repeat(4)}

    prepare_eval = prepare

    def loss(self, logits: torch.Tensor, batch: dict, epoch: int) -> torch.Tensor:
        return F.cross_entropy(logits, batch["target"])
