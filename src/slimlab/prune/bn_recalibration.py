"""BatchNorm re-estimation after pruning.

Removing channels, and ThiNet's re-weighting of layer i+1 (Eq. 6), change the distribution that
every later BatchNorm layer normalises, while its running statistics still describe the unpruned
network. Re-estimating them on calibration images, with no gradient step, is the cheap repair
(the "adaptive BN" of Li et al., EagleEye, 2020): for every BN layer, over the calibration batches b,

    mu  = mean_b  E[x_b]        sigma^2 = mean_b Var[x_b]       (PyTorch's cumulative average, momentum=None)

so the result is the exact average of the batch statistics, in whatever order the batches come.
Feed images drawn as in training, with the training augmentation: the layers after each BatchNorm
learnt on those statistics, and un-augmented images shift them (the zoo's ResNet-20, unpruned: 87.36% as
trained, 84.18% after re-estimation on 1,000 un-augmented training images, 87.46% on augmented ones).
Affine weights and all other parameters are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

IMAGE_KEYS = ("image", "images", "input", "inputs", "x", "pixel_values")  # a dict batch's image entry


def batch_images(b: object) -> torch.Tensor | None:
    """The images of one batch: an image tensor, the first item of an ``(images, labels)`` pair, or a dict's
    image entry (one of ``IMAGE_KEYS``); None for anything else."""
    if isinstance(b, (tuple, list)):
        b = b[0] if b else None
    elif isinstance(b, dict):
        b = next((b[k] for k in IMAGE_KEYS if k in b), None)
    return b if isinstance(b, torch.Tensor) else None


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable) -> int:
    """Re-estimate the running mean and variance of every BatchNorm layer of ``model`` from ``batches`` (image
    tensors, ``(images, labels)`` pairs or dicts, already normalised, as ``prune_module`` takes them); returns the
    number of BN layers re-estimated. The model's mode is restored, and on any failure its statistics too."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return 0
    saved = [(m.momentum, m.training) for m in bns]
    stats = [{k: v.clone() for k, v in m.state_dict().items() if k in _STATS} for m in bns]
    was, done = model.training, False
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen
    model.eval()
    for m in bns:
        m.train()  # only the BN layers use batch statistics (dropout stays off)
    try:
        _forward_all(model, batches)
        done = True
    finally:
        for m, (momentum, training), st in zip(bns, saved, stats):
            m.momentum = momentum
            m.train(training)
            if not done:
                m.load_state_dict({**m.state_dict(), **st})
        model.train(was)
    return len(bns)


_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _forward_all(model: nn.Module, batches: Iterable) -> None:
    dev = next(model.parameters()).device
    seen = 0
    for b in batches:
        x = batch_images(b)
        if x is None:
            raise ValueError(f"recalibrate_bn: a batch of {type(b).__name__}, not images [N, C, H, W], an "
                             f"(images, labels) pair or a dict with one of {', '.join(IMAGE_KEYS)}")
        model(x.to(dev))
        seen += 1
    if seen == 0:
        raise ValueError("recalibrate_bn: no calibration batch")


def batches_of(images: torch.Tensor, batch: int = 128) -> list[torch.Tensor]:
    """``images`` split in batches (the last one may be smaller)."""
    return [images[s: s + batch] for s in range(0, len(images), batch)]
