"""EfficientNet's compound scaling (Tan & Le, ICML 2019, Eq. 3).

depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi, subject to
alpha * beta^2 * gamma^2 ~= 2 and alpha, beta, gamma >= 1, so that MACs grow by about 2^phi
(MACs scale linearly with depth and quadratically with width and resolution).

The released B1-B7 coefficients (:data:`EFFICIENTNET`) are *not* exact powers of the paper's
alpha=1.2, beta=1.1, gamma=1.15: the authors rounded them by hand (e.g. B7: width 2.0 vs
1.1^7 = 1.95, depth 3.1 vs 1.2^7 = 3.58, resolution 600 vs 224 * 1.15^7 = 596). We keep both: the
rule as a function here and the released table as data in :mod:`slimlab.models.efficientnet`.
"""

from __future__ import annotations

from slimlab.models.efficientnet import EFFICIENTNET

__all__ = ["EFFICIENTNET", "compound", "flops_factor"]


def compound(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> tuple[float, float, float]:
    """Return the (depth, width, resolution) multipliers alpha^phi, beta^phi, gamma^phi."""
    if min(alpha, beta, gamma) < 1:
        raise ValueError("alpha, beta and gamma must be >= 1")
    return alpha**phi, beta**phi, gamma**phi


def flops_factor(alpha: float, beta: float, gamma: float) -> float:
    """alpha * beta^2 * gamma^2: the MACs growth per unit of phi (the paper constrains it to ~2)."""
    return alpha * beta**2 * gamma**2
