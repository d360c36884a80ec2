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
                      largest margin p̂_j(x) - p̂_i(x)
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


def keep_at_least_one(cj: np.ndarray) -> np.ndarray:
    """The numbers to flag: each given class keeps at least one example. Where a row's diagonal C[i][i] is 0, it
    becomes 1 and the row's non-zero off-diagonal counts shrink by 1 / (their number) each (never below 0); then
    every count is truncated to an integer, as cleanlab 2.9 does (``min_examples_per_class=1``; its
    ``_reduce_prune_counts`` casts with ``astype(int)`` before rounding the rows, so the rounding has nothing left to
    do): a count of 0.75 flags nobody."""
    c = cj.astype(float)
    diag = np.diagonal(c).copy()
    raised = np.maximum(diag, 1.0)
    per_row = np.maximum(np.count_nonzero(c, axis=1) - 1.0, 1.0)
    c = np.clip(c - ((raised - diag) / per_row)[:, None], 0, None)
    np.fill_diagonal(c, raised)
    return c.astype(np.int64)


def find_label_issues(labels: np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """A boolean mask of the examples confident learning flags (see the module's docstring)."""
    labels = np.asarray(labels)
    cj = keep_at_least_one(confident_joint(labels, pred_probs))
    mask = np.zeros(len(labels), dtype=bool)
    for i in range(pred_probs.shape[1]):
        rows = np.flatnonzero(labels == i)
        if len(rows) <= 1:  # cleanlab's min_examples_per_class
            continue
        p = pred_probs[rows]
        for j in np.flatnonzero(cj[i] > 0):
            if j != i:
                margin = p[:, j] - p[:, i]
                mask[rows[np.argsort(-margin)[: cj[i, j]]]] = True  # the default sort, as cleanlab (ties)
    adjusted = pred_probs.copy()
    adjusted[np.arange(len(labels)), labels] += EPS
    mask[adjusted.argmax(1) == labels] = False
    return mask
