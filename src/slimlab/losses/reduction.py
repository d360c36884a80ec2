"""What every loss function shares: its inputs checked (:func:`class_labels`) and its per-sample values reduced
(:func:`reduce`: ``mean``, the trainer's, ``sum``, or ``none``: one value per sample, for a loop that weights or
selects samples, e.g. Co-teaching's small-loss selection)."""

import numpy as np
import torch

REDUCTIONS = ("mean", "sum", "none")


def reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """``per_sample`` [N] reduced as torch's losses do (``reduction="mean" | "sum" | "none"``)."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def class_labels(logits: torch.Tensor, target) -> torch.Tensor:
    """``target`` as int64 class indices [N] on the logits' device, checked against ``logits`` [N, K]: torch's
    ``gather`` and ``one_hot`` would silently use only the first rows of a longer batch, or stretch one label over
    every row. A list, numpy array or tensor of any integer type is taken; float labels are refused (a soft label
    is not a class index), and on the CPU so are labels outside [0, K)."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be [N, K] (a batch of class scores), got shape {tuple(logits.shape)}")
    return class_indices(target, logits.shape[1], len(logits)).to(logits.device)


def class_indices(target, num_classes: int, n: int | None = None) -> torch.Tensor:
    """``target`` as int64 class indices [N] (``n`` of them if given, the logits' batch), on its own device. Float,
    complex and boolean labels are refused, and on the CPU labels outside [0, num_classes)."""
    t = target if isinstance(target, torch.Tensor) else torch.as_tensor(np.asarray(target))
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got {t.dtype} (round or argmax them first)")
    if t.dim() != 1 or (n is not None and len(t) != n):
        want = f"[N] with N = {n}, the logits' batch" if n is not None else "[N]"
        raise ValueError(f"labels must be {want}, got shape {tuple(t.shape)}")
    if t.device.type == "cpu" and len(t) and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}) for {num_classes} classes, got "
                         f"{int(t.min())}..{int(t.max())}")
    return t.long()
