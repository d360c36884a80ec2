"""Swap local search on ThiNet's objective (slimlab's extension; not in the paper).

ThiNet's greedy rule (Algorithm 1) is not optimal for Eq. 5,

    min_T  f(T) = sum_s ( sum_{c in T} x_hat_sc )^2 = || X 1_T ||^2,   |T| = C - keep.

From the greedy set, :func:`refine_swaps` repeatedly makes the best exchange of a removed channel
r in T with a kept channel k, while it lowers f. With the Gram matrix G = X^T X and v = X^T s,
where s = X 1_T is the running sum of the removed contributions, an exchange changes f by

    delta(k, r) = ||s - x_r + x_k||^2 - ||s||^2 = 2 v_k - 2 v_r + G_kk + G_rr - 2 G_kr,

so all |S| x |T| exchanges are scored in O(C^2), and after a swap v <- v - G[:, r] + G[:, k].
Only exchanges that lower f are taken, so the result is never worse than the start (greedy's) on Eq. 5.

Eq. 5 scores a set before the least-squares re-weighting of Eq. 6; after it, what counts is the
reconstruction error E(S) = min_w || y - X_S w ||^2, and a set better on Eq. 5 can be worse on E
(measured: 46 of 177 changed sets). :func:`refine_selection` therefore keeps, per layer, whichever of
the greedy and the refined set has the lower E, so the refinement is never worse where it counts.
"""

from __future__ import annotations

import time

import torch


def refine_swaps(x_hat: torch.Tensor, kept: torch.Tensor, max_swaps: int | None = None,
                 time_cap_s: float | None = None, rtol: float = 1e-12) -> tuple[torch.Tensor, dict]:
    """Improve the kept set ``kept`` (sorted indices of [m, C] ``x_hat``'s columns) by best-exchange swaps.

    Stops at a local optimum (no exchange lowers f by more than ``rtol`` x f), after ``max_swaps`` (default:
    10 x the number of channels, each swap O(C^2)), or after ``time_cap_s`` seconds when given (a wall-clock
    cap is not deterministic: ranks of a DDP job could stop at different swaps, so it is off by default).
    Returns the new sorted kept indices and {"swaps", "start", "end", "seconds"}."""
    t0 = time.perf_counter()
    x = x_hat.double()
    c = x.shape[1]
    kept_mask = torch.zeros(c, dtype=torch.bool)
    kept_mask[kept] = True
    g = x.T @ x  # [C, C]
    diag = torch.diagonal(g)
    v = g[:, ~kept_mask].sum(1)  # X^T s with s = sum of the removed columns
    f = float(v[~kept_mask].sum())  # ||s||^2 = 1_T^T G 1_T
    start, swaps = f, 0
    max_swaps = 10 * c if max_swaps is None else max_swaps
    while swaps < max_swaps and (time_cap_s is None or time.perf_counter() - t0 < time_cap_s):
        ks = torch.nonzero(kept_mask).flatten()
        rs = torch.nonzero(~kept_mask).flatten()
        if len(ks) == 0 or len(rs) == 0:
            break
        delta = (2 * v[ks] + diag[ks])[:, None] + (diag[rs] - 2 * v[rs])[None, :] - 2 * g[ks][:, rs]
        best = int(torch.argmin(delta))
        d = float(delta.flatten()[best])
        if d >= -rtol * max(f, 1e-300):
            break
        k, r = int(ks[best // len(rs)]), int(rs[best % len(rs)])
        kept_mask[k], kept_mask[r] = False, True  # k is removed now, r kept
        v += g[:, k] - g[:, r]
        f += d
        swaps += 1
    return torch.nonzero(kept_mask).flatten(), {"swaps": swaps, "start": start, "end": f,
                                                 "seconds": time.perf_counter() - t0}


def reweighted_error(x_hat: torch.Tensor, y: torch.Tensor, kept: torch.Tensor) -> float:
    """E(S) = min_w || y - x_hat[:, S] w ||^2: the reconstruction error left after ThiNet's re-weighting (Eq. 6)."""
    a, t = x_hat[:, kept].double(), y.double()
    w = torch.linalg.lstsq(a, t[:, None], driver="gelsd").solution.flatten()
    return float(((t - a @ w) ** 2).sum())


def refine_selection(x_hat: torch.Tensor, y: torch.Tensor, greedy: torch.Tensor,
                     max_swaps: int | None = None) -> tuple[torch.Tensor, dict]:
    """The swap-refined set of ``greedy`` if it reconstructs ``y`` at least as well after re-weighting, else
    ``greedy``; returns (kept, info) with both errors and which set was kept."""
    refined, info = refine_swaps(x_hat, greedy, max_swaps)
    e_greedy, e_refined = reweighted_error(x_hat, y, greedy), reweighted_error(x_hat, y, refined)
    keep_refined = e_refined <= e_greedy
    info.update(error_greedy=e_greedy, error_refined=e_refined, kept="refined" if keep_refined else "greedy")
    return (refined if keep_refined else greedy), info
