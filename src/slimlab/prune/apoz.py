"""APoZ criterion (Hu, Peng, Tai & Tang, "Network Trimming", arXiv 1607.03250, Eq. 1):

    APoZ_c = sum_{k, j} [O_c,j(k) == 0] / (N * M)

the average percentage of zeros of channel c's post-ReLU output O over N calibration images and
M spatial positions. Channels with the highest APoZ are removed. The activation is taken at the
input of the layer that consumes layer i's output (after its BN and ReLU). For non-ReLU
activations (SiLU, h-swish) nothing is exactly zero; we count values <= 0, which equals the
paper's definition under ReLU.
"""

from __future__ import annotations

import torch

from slimlab.prune.criterion import FIRST_INPUT, Criterion, LayerStats, Selection, register_criterion


def apoz_scores(activations: torch.Tensor) -> torch.Tensor:
    """APoZ per channel of post-activation maps [N, C, H, W] (or [N, C])."""
    a = activations.transpose(0, 1).flatten(1)
    return (a <= 0).double().mean(1)


def select_by_apoz(activations: torch.Tensor, keep: int) -> torch.Tensor:
    scores = apoz_scores(activations)
    # stable: among equal scores keep the lower index
    order = torch.argsort(scores, stable=True)
    return order[:keep].sort().values


class APoZ(Criterion):
    name = "apoz"
    needs = frozenset({FIRST_INPUT})

    def select(self, layer, keep: int, stats: LayerStats, generator: torch.Generator) -> Selection:
        return Selection(select_by_apoz(stats.first_input, keep))


register_criterion(APoZ)
