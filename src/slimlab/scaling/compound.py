"""EfficientNet's compound scaling (Tan & Le, ICML 2019, Eq. 3).

depth d = alpha^phi, width w = beta^phi, resolution r = gamma^phi, subject to
alpha * beta^2 * gamma^2 ~= 2 and alpha, beta, gamma >= 1, so that MACs grow by about 2^phi
(MACs scale linearly with depth and quadratically with width and resolution).

The released B1-B7 coefficients (:data:`EFFICIENTNET`) are *not* exact powers of the paper's
alpha=1.2, beta=1.1, gamma=1.15: the authors rounded them by hand (e.g. B7: width 2.0 vs
1.1^7 = 1.95, depth 3.1 vs 1.2^7 = 3.58, resolution 600 vs 224 * 1.15^7 = 596). We keep both: the
rule as a function and the released table as data.
"""

from __future__ import annotations

# name: (width, depth, resolution, dropout), as released (and as torchvision builds them)
EFFICIENTNET: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}


def compound(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> tuple[float, float, float]:
    """Return the (depth, width, resolution) multipliers alpha^phi, beta^phi, gamma^phi."""
    if min(alpha, beta, gamma) < 1:
        raise ValueError("alpha, beta and gamma must be >= 1")
    return alpha**phi, beta**phi, gamma**phi


def flops_factor(alpha: float, beta: float, gamma: float) -> float:
    """alpha * beta^2 * gamma^2: the MACs growth per unit of phi (the paper constrains it to ~2)."""
    return alpha * beta**2 * gamma**2
