"""Label-issue detection as pure functions over arrays, in the manner of cleanlab's
``find_label_issues(labels, pred_probs)``: :func:`find_label_issues` takes numpy arrays or tensors and returns
the same kind.

Given the labels a data set carries and predicted class probabilities for every sample (PENCIL's
label distribution y_d, or out-of-sample predictions of models that never trained on the sample),
the corrected label is the most probable class and a sample is flagged when it differs from the
given one. Samples are ranked by the suspicion score ``1 - p(given label)``. With the injected
flips known, :func:`flag_quality` gives precision and recall of the flags.

Producing the probabilities (training the cross-validation folds) and writing the files is the job
of ``slimlab labels`` (:mod:`slimlab.tasks.labels`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class LabelIssues:
    order: torch.Tensor  # positions sorted by suspicion, most suspicious first (stable)
    corrected: torch.Tensor  # argmax of the probabilities
    confidence: torch.Tensor  # probability of the corrected label
    suspicion: torch.Tensor  # 1 - probability of the given label
    flagged: torch.Tensor  # bool: corrected != given


def score_label_issues(labels: torch.Tensor, pred_probs: torch.Tensor) -> LabelIssues:
    """Score every sample: ``labels`` [N] given labels, ``pred_probs`` [N, K] predicted probabilities."""
    if pred_probs.ndim != 2 or len(pred_probs) != len(labels):
        raise ValueError(f"pred_probs must be [N, K] with N = {len(labels)}, got {tuple(pred_probs.shape)}")
    labels = labels.long()
    corrected = pred_probs.argmax(1)
    confidence = pred_probs.max(1).values
    suspicion = 1 - pred_probs.gather(1, labels[:, None]).squeeze(1)
    order = torch.argsort(suspicion, descending=True, stable=True)
    return LabelIssues(order, corrected, confidence, suspicion, corrected != labels)


def flag_quality(flagged: torch.Tensor, truly_flipped: torch.Tensor) -> dict:
    """Precision and recall of boolean ``flagged`` against the known flips ``truly_flipped``."""
    tp = int((flagged & truly_flipped).sum())
    return {"true_flips": int(truly_flipped.sum()), "precision": tp / max(int(flagged.sum()), 1),
            "recall": tp / max(int(truly_flipped.sum()), 1)}


def pencil_probs(ckpt: dict) -> torch.Tensor | None:
    """PENCIL's label distribution y_d = softmax(y~) from a checkpoint, or None for other runs."""
    yt = (ckpt.get("objective") or {}).get("y_tilde")
    return None if yt is None else yt.float().softmax(1)


DETECTORS = ("pencil-labels", "model", "kfold", "small-loss")


def flag_rule(detector: str, labels: torch.Tensor, pred_probs: torch.Tensor,
              filter_by: str = "prune_by_noise_rate") -> torch.Tensor:
    """Each detector's own threshold, as a boolean mask over the samples:

    - ``pencil-labels`` (PENCIL's y_d) and ``model`` (a network's predictions): the most probable class is not the
      given one;
    - ``kfold`` (out-of-sample probabilities): confident learning's rule ``filter_by``, as cleanlab applies it
      (:mod:`slimlab.noise.confident_learning`);
    - ``small-loss`` (a network's in-sample loss, as Co-teaching selects): the largest-loss fraction rho of the
      samples, rho the noise rate estimated by the calibrated confident joint, 1 - trace(C) / N.
    """
    from slimlab.noise import confident_learning as cl

    y, pr = labels.long().numpy(), pred_probs.double().numpy()
    if detector == "kfold":
        return torch.from_numpy(cl.find_label_issues(y, pr, filter_by))
    if detector == "small-loss":
        cj = cl.confident_joint(y, pr)
        m = int(round(len(y) * (1 - np.trace(cj) / max(cj.sum(), 1))))
        loss = -torch.log(pred_probs.gather(1, labels.long()[:, None]).squeeze(1).clamp_min(1e-12))
        flagged = torch.zeros(len(y), dtype=torch.bool)
        flagged[torch.argsort(loss, descending=True, stable=True)[:m]] = True
        return flagged
    if detector in ("pencil-labels", "model"):
        return pred_probs.argmax(1) != labels.long()
    raise ValueError(f"unknown detector {detector!r} (choose from {', '.join(DETECTORS)})")


# find_label_issues' methods -> the detector rule they apply
METHODS = {"confident_learning": "kfold", "argmax": "model", "small_loss": "small-loss"}


RANKINGS = ("self_confidence", "normalized_margin")  # cleanlab's return_indices_ranked_by


def find_label_issues(labels, pred_probs, *, method: str = "confident_learning", filter_by: str | None = None,
                      frac_noise: float = 1.0, min_examples_per_class: int = 1, return_ranked: bool = False,
                      return_indices_ranked_by: str | None = None, confident_joint=None, n_jobs: int | None = None,
                      verbose: bool = False):
    """The suspicious labels of a data set, from predicted class probabilities (cleanlab's convention).

    ``labels``: [N] integer labels in [0, K); ``pred_probs``: [N, K] probabilities (rows summing to 1), numpy
    arrays or tensors on any device. ``method``: ``confident_learning`` (for out-of-sample probabilities, e.g.
    k-fold), ``argmax`` (flag where the most probable class is not the label: PENCIL's y_d, or a network's
    predictions), ``small_loss`` (the largest-loss fraction, that fraction estimated by confident learning).

    Confident learning takes cleanlab's keywords: ``filter_by`` (``prune_by_noise_rate``, cleanlab's default, or
    ``prune_by_class``, ``both``, ``confident_learning``, ``predicted_neq_given``, ``low_self_confidence``,
    ``low_normalized_margin``), ``frac_noise``, ``min_examples_per_class`` and ``confident_joint`` (a K x K joint of
    your own for the first three rules); each gives cleanlab 2.9's answer (:mod:`slimlab.noise.confident_learning`).
    ``n_jobs`` and ``verbose`` are taken and change nothing (one process here, the same answer).

    Returns a boolean mask [N], or with ``return_ranked`` (or
    ``return_indices_ranked_by``: ``self_confidence``, the same, or ``normalized_margin``) the flagged indices,
    most suspicious first (ties in index order); numpy in, numpy out; tensors in, CPU tensors out."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    rank = _ranking(return_ranked, return_indices_ranked_by)
    y, p = _checked(labels, pred_probs)
    if method == "confident_learning":
        mask = torch.from_numpy(_confident_learning(y.numpy(), p.numpy(), filter_by, frac_noise,
                                                    min_examples_per_class, confident_joint))
    elif filter_by is not None or frac_noise != 1.0 or min_examples_per_class != 1 or confident_joint is not None:
        raise ValueError(f"filter_by, frac_noise, min_examples_per_class and confident_joint are confident "
                         f"learning's: method {method!r} takes none of them")
    else:
        mask = flag_rule(METHODS[method], y, p)
    out = mask
    if rank is not None:
        from slimlab.noise import confident_learning as cl

        score = torch.from_numpy(getattr(cl, rank)(y.numpy(), p.numpy()))
        order = torch.argsort(score, stable=True)
        out = order[mask[order]]
    return out if isinstance(labels, torch.Tensor) else out.numpy()


def _ranking(return_ranked: bool, by: str | None) -> str | None:
    if by is not None and by not in RANKINGS:
        raise ValueError(f"unknown return_indices_ranked_by {by!r} (choose from {', '.join(RANKINGS)})")
    return by or ("self_confidence" if return_ranked else None)


def _confident_learning(y: np.ndarray, p: np.ndarray, filter_by: str | None, frac_noise: float,
                        min_examples_per_class: int, joint=None) -> np.ndarray:
    from slimlab.noise import confident_learning as cl

    filter_by = filter_by or cl.FILTERS[0]
    if filter_by not in cl.FILTERS:
        raise ValueError(f"unknown filter_by {filter_by!r} (choose from {', '.join(cl.FILTERS)})")
    if isinstance(frac_noise, bool) or not isinstance(frac_noise, (int, float, np.floating)) or not 0 < frac_noise <= 1:
        raise ValueError(f"frac_noise must be a number in (0, 1], got {frac_noise!r}")
    if isinstance(min_examples_per_class, bool) or not isinstance(min_examples_per_class, (int, np.integer)) \
            or min_examples_per_class < 0:
        raise ValueError(f"min_examples_per_class must be an integer >= 0, got {min_examples_per_class!r}")
    if joint is not None:
        joint = np.asarray(joint)
        k = p.shape[1]
        if joint.shape != (k, k) or not np.isfinite(joint).all() or (joint < 0).any():
            raise ValueError(f"confident_joint must be a non-negative [K, K] matrix with K = {k} classes, got "
                             f"shape {joint.shape}")
    if filter_by not in cl.FILTERS[:3] and (frac_noise != 1.0 or min_examples_per_class != 1 or joint is not None):
        warnings.warn(f"frac_noise, min_examples_per_class and confident_joint act on filter_by "
                      f"{', '.join(cl.FILTERS[:3])}; {filter_by} ignores them (as cleanlab does)", stacklevel=3)
        joint = None
    return cl.find_label_issues(y, p, filter_by, frac_noise=frac_noise, min_examples_per_class=min_examples_per_class,
                                joint=joint)


def _checked(labels, pred_probs) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, probabilities) as CPU tensors, or a one-line ValueError naming what is wrong."""
    from slimlab.noise.corrupt import label_tensor

    p = pred_probs if isinstance(pred_probs, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(pred_probs))
    p = p.detach().cpu().double()
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"pred_probs must be [N, K] with K >= 2 classes, got {tuple(p.shape)}")
    y = label_tensor(labels, p.shape[1], ValueError)  # the columns of pred_probs are the classes
    if len(p) != len(y):
        raise ValueError(f"pred_probs must be [N, K] with N = {len(y)} labels, got {tuple(p.shape)}")
    if not torch.isfinite(p).all() or (p < 0).any() or not torch.allclose(p.sum(1), torch.ones(len(p),
                                                                                               dtype=p.dtype),
                                                                           atol=1e-3):
        raise ValueError("pred_probs must be probabilities: non-negative rows summing to 1 (logits? apply softmax)")
    return y, p


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def precision_recall_curve(suspicion: torch.Tensor, truly_flipped: torch.Tensor) -> dict:
    """Precision and recall of flagging the k most suspicious samples, for every k; and the average precision."""
    order = torch.argsort(suspicion, descending=True, stable=True)
    hits = truly_flipped[order].double().cumsum(0)
    k = torch.arange(1, len(order) + 1, dtype=torch.float64)
    precision, recall = hits / k, hits / max(int(truly_flipped.sum()), 1)
    ap = float((precision * truly_flipped[order].double()).sum() / max(int(truly_flipped.sum()), 1))
    return {"precision": precision, "recall": recall, "average_precision": ap}
