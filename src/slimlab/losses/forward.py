"""Forward loss correction (Patrini et al., CVPR 2017, Theorem 2): CE(T^T p(x), noisy y).

T[i, j] = P(noisy = j | true = i), given or estimated with the paper's estimator (Eq. 12-13):
for each class i take the training sample x_i with the highest p(i | x) below its 97th
percentile (robust to outliers) under a model trained on the noisy labels, and set T[i, :] = p(. | x_i).
"""

import numpy as np
import torch
import torch.nn.functional as F

from slimlab.losses.reduction import class_labels, reduce


def forward_loss(logits: torch.Tensor, target: torch.Tensor, T: torch.Tensor | np.ndarray,
                 reduction: str = "mean") -> torch.Tensor:
    """CE of the noisy label under T^T p(x): the clean prediction pushed through the transition matrix T [K, K]
    (a tensor, or the numpy array ``corrupt`` and ``estimate_transition`` return)."""
    target = class_labels(logits, target)
    p_noisy = logits.softmax(1) @ transition_matrix(T, logits.shape[1]).to(logits)
    return reduce(F.nll_loss(p_noisy.clamp_min(1e-12).log(), target, reduction="none"), reduction)


def transition_matrix(T: torch.Tensor | np.ndarray, k: int) -> torch.Tensor:
    """``T`` checked as a transition matrix for ``k`` classes: [k, k], finite, non-negative, rows summing to 1
    (T[i, j] = P(noisy j | clean i)). An all-ones matrix made every prediction's loss zero, and a wrong size was a
    bare matmul error."""
    t = torch.as_tensor(np.asarray(T) if not isinstance(T, torch.Tensor) else T).double()
    if t.shape != (k, k):
        raise ValueError(f"T must be [{k}, {k}] for {k} classes, got shape {tuple(t.shape)}")
    rows = t.sum(1)
    if not torch.isfinite(t).all() or (t < 0).any() or not torch.allclose(rows, torch.ones_like(rows), atol=1e-3):
        raise ValueError("T must be a transition matrix: finite, non-negative, each row summing to 1 (T[i, j] = "
                         f"P(noisy j | clean i)); its row sums are {rows.min().item():.4g}..{rows.max().item():.4g}")
    return t


def estimate_transition(probs: torch.Tensor | np.ndarray, percentile: float = 97.0) -> np.ndarray:
    """Patrini's anchor-point estimator from softmax outputs ``probs`` [n, K] of a noisy-trained model."""
    p = np.asarray(probs, dtype=np.float64)
    k = p.shape[1]
    t = np.zeros((k, k))
    for i in range(k):
        col = p[:, i].copy()
        if percentile < 100:  # as the authors' code: the largest p(i|x) below the percentile
            col[col >= np.percentile(col, percentile, method="higher")] = 0.0
        t[i] = p[np.argmax(col)]
    return t / t.sum(1, keepdims=True)
