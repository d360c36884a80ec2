"""How a loss function reduces its per-sample values: ``mean`` (the trainer's), ``sum``, or ``none`` (one value
per sample, for a loop that weights or selects samples, e.g. Co-teaching's small-loss selection)."""

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
