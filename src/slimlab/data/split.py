"""Seeded, stratified index selection: validation splits and per-class subsets."""

from __future__ import annotations

import torch


def stratified_split(targets: torch.Tensor, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (keep, held_out) with ``round(fraction * n_c)`` held out of each class c."""
    g = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for c in torch.unique(targets).tolist():
        idx = torch.nonzero(targets == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = int(round(fraction * len(idx)))
        held.append(idx[:k])
        keep.append(idx[k:])
    return torch.cat(keep).sort().values, torch.cat(held).sort().values


def stratified_subset(targets: torch.Tensor, total: int = 0, per_class: int = 0, seed: int = 0) -> torch.Tensor:
    """Indices of a class-balanced subset: ``per_class`` per class, or ``total`` spread by class share."""
    g = torch.Generator().manual_seed(seed)
    n = len(targets)
    out = []
    for c in torch.unique(targets).tolist():
        idx = torch.nonzero(targets == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = per_class if per_class else int(round(total * len(idx) / n))
        out.append(idx[: max(1, min(k, len(idx)))])
    return torch.cat(out).sort().values


def first_per_class(targets: torch.Tensor, per_class: int) -> torch.Tensor:
    """Positions of the first ``per_class`` samples of every class, in the data set's order (the official RotNet
    semi-supervised rule), sorted."""
    out = [torch.nonzero(targets == c).flatten()[:per_class] for c in torch.unique(targets).tolist()]
    return torch.sort(torch.cat(out)).values if out else torch.zeros(0, dtype=torch.long)
