"""Confident learning (Northcutt, Jiang & Chuang, JAIR 2021): the rule cleanlab's ``find_label_issues`` applies
by default (``filter_by="prune_by_noise_rate"``), written from the paper and checked against cleanlab in tests.

Given labels ỹ and out-of-sample probabilities p̂ (N x K):

- thresholds          t_j = mean of p̂_j(x) over the examples labelled j
- confident joint     C[i][j] = #{x : ỹ = i, y* = j}, where y* is the one class with p̂_j(x) >= t_j, or, when
                      several reach their thresholds, argmax p̂(x) over all classes (as cleanlab does);
                      examples reaching none are not counted; the diagonal is at least 1
- calibration         each row scaled to its label count n_i, the whole to N, rounded keeping the row totals
- keep one per class  a row whose C[i][i] is 0 gets 1, taken evenly from its non-zero off-diagonal counts
- prune by noise rate for each given class i and each j != i, flag the C[i][j] examples labelled i with the
                      largest margin p̂_j(x) - p̂_i(x) (cleanlab's other ``filter_by`` rules: :func:`find_label_issues`)
- an example whose given label is (within 1e-6) its most probable class is never flagged.

Pure functions on numpy arrays, as cleanlab's are.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6  # cleanlab's floating-point comparison slack


def confident_thresholds(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """t_j: the mean probability of class j over the examples labelled j (2, never reached, for absent classes)."""
    k = pred_probs.shape[1]
    t = np.full(k, 2.0)
    for j in range(k):
        members = labels == j
        if members.any():
            t[j] = pred_probs[members, j].mean()
    return np.clip(t, 2 * EPS, None)


def confident_joint(labels: np.ndarray, pred_probs: np.ndarray, calibrate: bool = True) -> np.ndarray:
    """C[given, true guess] (K x K integers), calibrated to the label counts unless ``calibrate`` is False."""
    labels = np.asarray(labels)
    n, k = pred_probs.shape
    above = pred_probs >= confident_thresholds(labels, pred_probs) - EPS
    count = above.sum(1)
    guess = np.where(count > 1, pred_probs.argmax(1), above.argmax(1))
    keep = count > 0
    cj = np.zeros((k, k), dtype=np.int64)
    np.add.at(cj, (labels[keep], guess[keep]), 1)
    np.fill_diagonal(cj, np.maximum(cj.diagonal(), 1))
    # cleanlab's joint is confusion_matrix(...).T, column-major: np.sum below then adds in its order, and the last
    # bit of the total decides near-ties in the rounding (in C order 4 of 1,000 random cases were one flag apart)
    cj = np.asfortranarray(cj)
    if not calibrate:
        return cj
    counts = np.bincount(labels, minlength=k)
    # in cleanlab's order of operations: a row's fractions often tie at .5, and float noise then picks the +1s
    c = (cj.T / np.clip(cj.sum(axis=1), 1e-100, None) * counts).T
    c = c / np.clip(np.sum(c), 1e-100, None) * sum(counts)
    return np.stack([round_preserving_sum(row) for row in c])


def round_preserving_sum(x: np.ndarray) -> np.ndarray:
    """Round a row to integers whose sum is the rounded sum of the row: the largest remainders get the +1s."""
    ints = np.round(x)
    target = np.round(x.sum())
    while abs(target - ints.sum()) > EPS:
        diff = int(np.round(target - ints.sum()))
        step = 1 if diff > 0 else -1
        # numpy's default sort, as cleanlab calls it: ties at .5 are common, and which of them gets the +-1 is then
        # that sort's (unstable, machine-dependent) order; the same call gives cleanlab's answer on any machine
        order = np.argsort(x - ints)[::-step]
        ints[order[: min(abs(diff), len(x))]] += step
    return ints.astype(np.int64)


def keep_at_least_one(cj: np.ndarray, n: int = 1, frac_noise: float = 1.0) -> np.ndarray:
    """The numbers to flag: each given class keeps at least ``n`` examples. Where a row's diagonal C[i][i] is below
    n, it becomes n and the row's non-zero off-diagonal counts shrink by (the raise) / (their number) each (never
    below 0); then the off-diagonal counts are scaled by ``frac_noise`` (the diagonal takes what they lose) and
    every count is truncated to an integer, as cleanlab 2.9 does (``min_examples_per_class``; its
    ``_reduce_prune_counts`` casts with ``astype(int)`` before rounding the rows, so the rounding has nothing left to
    do): a count of 0.75 flags nobody."""
    c = cj.astype(float)
    diag = np.diagonal(c).copy()
    raised = np.maximum(diag, float(n))
    per_row = np.maximum(np.count_nonzero(c, axis=1) - 1.0, 1.0)
    c = np.clip(c - ((raised - diag) / per_row)[:, None], 0, None)
    np.fill_diagonal(c, raised)
    scaled = c * frac_noise
    np.fill_diagonal(scaled, raised)
    np.fill_diagonal(scaled, raised + (c - scaled).sum(1))  # a row keeps its total
    return scaled.astype(np.int64)


# cleanlab's filter_by rules; the first is its default and the paper's
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given",
           "low_self_confidence", "low_normalized_margin")


def find_label_issues(labels: np.ndarray, pred_probs: np.ndarray, filter_by: str = "prune_by_noise_rate", *,
                      frac_noise: float = 1.0, min_examples_per_class: int = 1,
                      joint: np.ndarray | None = None) -> np.ndarray:
    """A boolean mask of the examples confident learning flags, by one of cleanlab's ``filter_by`` rules:

    - ``prune_by_noise_rate``: for each given class i and each j != i, the C[i][j] examples labelled i with the
      largest margin p̂_j(x) - p̂_i(x) (the counts after :func:`keep_at_least_one`);
    - ``prune_by_class``: for each given class i, the n_i - C[i][i] examples labelled i with the smallest p̂_i(x);
    - ``both``: flagged by both rules;
    - ``confident_learning``: the examples counted off the diagonal of the (uncalibrated) confident joint;
    - ``predicted_neq_given``: argmax p̂(x) is not the given label;
    - ``low_self_confidence`` / ``low_normalized_margin``: the m lowest :func:`self_confidence` /
      :func:`normalized_margin` scores, m the number ``confident_learning`` flags.

    Every rule but the last two then unflags an example whose given label is (within 1e-6) its most probable class.
    ``frac_noise``, ``min_examples_per_class`` and ``joint`` (a confident joint of your own, instead of
    :func:`confident_joint`'s) act on the first three, as in cleanlab."""
    labels = np.asarray(labels)
    if filter_by not in FILTERS:
        raise ValueError(f"unknown filter_by {filter_by!r} (choose from {', '.join(FILTERS)})")
    if filter_by in ("low_self_confidence", "low_normalized_margin"):
        scores = (self_confidence if filter_by == "low_self_confidence" else normalized_margin)(labels, pred_probs)
        mask = np.zeros(len(labels), dtype=bool)
        mask[np.argsort(scores)[:int(off_diagonal(labels, pred_probs).sum())]] = True  # the default sort (ties)
        return mask
    if filter_by == "confident_learning":
        mask = off_diagonal(labels, pred_probs, reduce=False)
    elif filter_by == "predicted_neq_given":
        mask = pred_probs.argmax(1) != labels
    else:
        cj = confident_joint(labels, pred_probs) if joint is None else joint
        counts = keep_at_least_one(cj, min_examples_per_class, frac_noise)
        by_rate = _prune_by_noise_rate(labels, pred_probs, counts, min_examples_per_class)
        mask = by_rate if filter_by == "prune_by_noise_rate" else _prune_by_class(labels, pred_probs, counts,
                                                                                  min_examples_per_class)
        if filter_by == "both":
            mask &= by_rate
    return mask & ~_predicts_given(labels, pred_probs)


def _prune_by_noise_rate(labels: np.ndarray, pred_probs: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(len(labels), dtype=bool)
    for i in range(pred_probs.shape[1]):
        rows = np.flatnonzero(labels == i)
        if len(rows) <= max(n, 1):  # cleanlab's min_examples_per_class
            continue
        p = pred_probs[rows]
        for j in np.flatnonzero(counts[i] > 0):
            if j != i:
                margin = p[:, j] - p[:, i]
                mask[rows[np.argsort(-margin)[: counts[i, j]]]] = True  # the default sort, as cleanlab (ties)
    return mask


def _prune_by_class(labels: np.ndarray, pred_probs: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(len(labels), dtype=bool)
    for i in range(pred_probs.shape[1]):
        rows = np.flatnonzero(labels == i)
        if len(rows) <= max(n, 1):
            continue
        mask[rows[np.argsort(pred_probs[rows, i])[: max(len(rows) - counts[i, i], 0)]]] = True
    return mask


def _predicts_given(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Examples whose given label is, within 1e-6, their most probable class: never flagged."""
    adjusted = pred_probs.copy()
    adjusted[np.arange(len(labels)), labels] += EPS
    return adjusted.argmax(1) == labels


def off_diagonal(labels: np.ndarray, pred_probs: np.ndarray, reduce: bool = True) -> np.ndarray:
    """The examples the confident joint counts off its diagonal (a confident guess y* that is not the given label);
    with ``reduce``, less those whose given label is their most probable class (cleanlab's ``num_label_issues``)."""
    labels = np.asarray(labels)
    above = pred_probs >= confident_thresholds(labels, pred_probs) - EPS
    count = above.sum(1)
    guess = np.where(count > 1, pred_probs.argmax(1), above.argmax(1))
    mask = (count > 0) & (guess != labels)
    return mask & ~_predicts_given(labels, pred_probs) if reduce else mask


def self_confidence(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """p̂_y(x), the probability of the given label: low means suspicious."""
    return pred_probs[np.arange(len(labels)), np.asarray(labels)]


def normalized_margin(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """(p̂_y(x) - max_{k != y} p̂_k(x) + 1) / 2, in [0, 1]: low means another class is clearly likelier."""
    labels = np.asarray(labels)
    others = pred_probs.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    return (self_confidence(labels, pred_probs) - others.max(1) + 1) / 2
