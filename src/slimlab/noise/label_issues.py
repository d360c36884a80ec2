"""Label-issue scoring as a pure function over arrays, in the manner of cleanlab's
``find_label_issues(labels, pred_probs)``.

Given the labels a data set carries and predicted class probabilities for every sample (PENCIL's
label distribution y_d, or out-of-sample predictions of models that never trained on the sample),
the corrected label is the most probable class and a sample is flagged when it differs from the
given one. Samples are ranked by the suspicion score ``1 - p(given label)``. With the injected
flips known, :func:`flag_quality` gives precision and recall of the flags.

Producing the probabilities (training the cross-validation folds) and writing the files is the job
of ``slimlab labels`` (:mod:`slimlab.tasks.labels`).
"""

from __future__ import annotations

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


def find_label_issues(labels: torch.Tensor, pred_probs: torch.Tensor) -> LabelIssues:
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


def flag_rule(detector: str, labels: torch.Tensor, pred_probs: torch.Tensor) -> torch.Tensor:
    """Each detector's own threshold, as a boolean mask over the samples:

    - ``pencil-labels`` (PENCIL's y_d) and ``model`` (a network's predictions): the most probable class is not the
      given one;
    - ``kfold`` (out-of-sample probabilities): confident learning's rule, as cleanlab applies it
      (:mod:`slimlab.noise.confident_learning`);
    - ``small-loss`` (a network's in-sample loss, as Co-teaching selects): the largest-loss fraction rho of the
      samples, rho the noise rate estimated by the calibrated confident joint, 1 - trace(C) / N.
    """
    from slimlab.noise import confident_learning as cl

    y, pr = labels.long().numpy(), pred_probs.double().numpy()
    if detector == "kfold":
        return torch.from_numpy(cl.find_label_issues(y, pr))
    if detector == "small-loss":
        cj = cl.confident_joint(y, pr)
        m = int(round(len(y) * (1 - np.trace(cj) / max(cj.sum(), 1))))
        loss = -torch.log(pred_probs.gather(1, labels.long()[:, None]).squeeze(1).clamp_min(1e-12))
        flagged = torch.zeros(len(y), dtype=torch.bool)
        flagged[torch.argsort(loss, descending=True, stable=True)[:m]] = True
        return flagged
    return pred_probs.argmax(1) != labels.long()


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
