"""Losses and objectives: CE, robust losses for noisy labels, PENCIL, behind one seam."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial

import torch

from slimlab.errors import SlimlabError
from slimlab.losses.bootstrap import bootstrap_hard_loss, bootstrap_soft_loss
from slimlab.losses.forward import estimate_transition, forward_loss
from slimlab.losses.gce import TruncatedGCE, gce_loss, gce_trunc_loss
from slimlab.losses.mae import mae_loss
from slimlab.losses.nce_rce import nce_loss, nce_rce_loss
from slimlab.losses.objective import LossObjective, Objective
from slimlab.losses.pencil import PencilObjective, pencil_lc, pencil_loss
from slimlab.losses.sce import rce_loss, sce_loss
from slimlab.ssl.rotnet import RotNetObjective

__all__ = ["Objective", "LossObjective", "PencilObjective", "TruncatedGCE", "build_objective", "bootstrap_hard_loss",
           "bootstrap_soft_loss", "estimate_transition", "forward_loss", "gce_loss", "gce_trunc_loss", "mae_loss",
           "nce_loss",
           "nce_rce_loss", "pencil_lc", "pencil_loss", "rce_loss", "sce_loss", "LOSSES", "for_cross_validation",
           "keeps_label_variables"]

LOSSES = {
    "gce": gce_loss,
    "sce": sce_loss,
    "mae": mae_loss,
    "nce_rce": nce_rce_loss,
    "bootstrap_soft": bootstrap_soft_loss,
    "bootstrap_hard": bootstrap_hard_loss,
}
NAMES = ["ce", *LOSSES, "gce_trunc", "forward", "pencil", "rotnet"]


def build_objective(name: str, num_classes: int, *, kwargs: dict | None = None, label_smoothing: float = 0.0,
                    targets: torch.Tensor | None = None, epochs: int = 1, lr: float | None = None,
                    transition: torch.Tensor | None = None,
                    estimate_transition_from: Callable[[str], torch.Tensor] | None = None) -> Objective:
    """An objective by name (``ce``, ``gce``, ``sce``, ``mae``, ``nce_rce``, ``bootstrap_soft``,
    ``bootstrap_hard``, ``forward``, ``pencil``, ``rotnet``) with its keyword options.

    This is the one place that dispatches on a loss name. ``transition`` is the injected noise's
    matrix (used by ``forward`` unless ``kwargs`` give ``matrix`` or ``estimate_from``, a checkpoint
    whose predictions ``estimate_transition_from`` turns into a matrix)."""
    kw = dict(kwargs or {})
    if "reduction" in kw:
        raise SlimlabError(f"--loss {name}: loss_kwargs.reduction is for your own loop (the trainer takes the mean)")
    try:
        if name == "ce":
            _no_options(kw)
            return Objective(label_smoothing)
        if name in LOSSES:
            fn = LOSSES[name]
            with warnings.catch_warnings():  # validate the options now (a zero input's warnings mean nothing)
                warnings.simplefilter("ignore")
                fn(torch.zeros(1, num_classes), torch.zeros(1, dtype=torch.long), **kw)
            return LossObjective(partial(fn, **kw), name)
        if name == "gce_trunc":
            return TruncatedGCE(epochs, **kw)
        if name == "forward":
            t = _forward_matrix(kw, transition, estimate_transition_from, num_classes)
            return LossObjective(partial(forward_loss, T=torch.as_tensor(t, dtype=torch.float32)), name)
        if name == "rotnet":
            _no_options(kw)
            return RotNetObjective()
        if name == "pencil":
            if targets is None:
                raise SlimlabError("PENCIL needs the training labels")
            kw.setdefault("lr", lr)
            kw.setdefault("lr2", None if lr is None else lr * 10 / 3)  # official: lr 0.06, lr2 0.2
            return PencilObjective(targets, num_classes, epochs, **kw)
    except SlimlabError:
        raise
    except TypeError as e:
        raise SlimlabError(f"--loss {name}: bad loss_kwargs ({e})") from None
    except ValueError as e:
        raise SlimlabError(f"--loss {name}: {e}") from None
    raise SlimlabError(f"unknown loss '{name}' (choose from {', '.join(NAMES)})")


def _no_options(kw: dict) -> None:
    if kw:
        raise TypeError(f"unexpected option(s) {', '.join(kw)}")


def _forward_matrix(kw: dict, transition, estimate_from, num_classes: int) -> torch.Tensor:
    if "matrix" in kw:
        m = kw.pop("matrix")
        try:
            t = torch.tensor(m, dtype=torch.float32)
        except (TypeError, ValueError):
            raise SlimlabError("--loss forward: loss_kwargs.matrix must be a matrix of numbers") from None
        if t.shape != (num_classes, num_classes) or not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
            raise SlimlabError(f"--loss forward: loss_kwargs.matrix must be {num_classes}x{num_classes} with "
                               f"non-negative entries, got shape {tuple(t.shape)}")
        return t
    if "estimate_from" in kw:
        path = kw.pop("estimate_from")
        if estimate_from is None:
            raise SlimlabError("--loss forward: loss_kwargs.estimate_from needs the training data")
        return estimate_from(path)
    _no_options(kw)
    if transition is None:
        raise SlimlabError("--loss forward needs a transition matrix: inject synthetic noise (the given T), "
                           "or set loss_kwargs.matrix / loss_kwargs.estimate_from")
    return transition


# Objectives whose per-sample or external state cannot be rebuilt on a cross-validation fold (PENCIL's label
# variables, forward's transition matrix) train their folds with plain cross-entropy.
_CV_FALLBACK = {"pencil": "ce", "forward": "ce"}


def for_cross_validation(name: str, kwargs: dict) -> tuple[str, dict]:
    """The (loss, loss_kwargs) to train an out-of-sample fold model of a run trained with ``name``."""
    if name in _CV_FALLBACK:
        return _CV_FALLBACK[name], {}
    return name, dict(kwargs)


def keeps_label_variables(name: str) -> bool:
    """Whether a run with this loss carries per-sample label estimates in its checkpoint (PENCIL's y~)."""
    return name == "pencil"
