"""APoZ criterion (Hu, Peng, Tai & Tang, "Network Trimming", arXiv 1607.03250, Eq. 1):

    APoZ_c = sum_{k, j} [O_c,j(k) == 0] / (N * M)

the average percentage of zeros of channel c's post-ReLU output O over N calibration images and
M spatial positions. Channels with the highest APoZ are removed. By default O is layer i's own
ReLU output, as the paper defines it: its BN's output a is collected and a <= 0 counted (ReLU(a)
is zero exactly there), so a max-pool between layer i and the next conv (VGG) does not change the
count. ``apoz_at="first_input"`` measures at the next conv's input instead (after any pooling:
slimlab's earlier behaviour). For non-ReLU activations (SiLU, h-swish) nothing is exactly zero;
values <= 0 are counted, which equals the paper's definition under ReLU.
"""

from __future__ import annotations

import torch

from slimlab.prune.criterion import ACTIVATION, FIRST_INPUT, Criterion, LayerStats, Selection, register_criterion


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

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({FIRST_INPUT if self.options.apoz_at == "first_input" else ACTIVATION})

    def select(self, layer, keep: int, stats: LayerStats, generator: torch.Generator) -> Selection:
        return Selection(select_by_apoz(self._acts(stats), keep))

    def scores(self, layer, stats: LayerStats, generator: torch.Generator) -> torch.Tensor:
        return 1.0 - apoz_scores(self._acts(stats))  # the fraction of non-zero outputs

    def _acts(self, stats: LayerStats) -> torch.Tensor:
        return stats.first_input if self.options.apoz_at == "first_input" else stats.activation


register_criterion(APoZ)
