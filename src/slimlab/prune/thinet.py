"""ThiNet filter selection (Luo, Wu & Lin, ICCV 2017, arXiv 1707.06342; TPAMI 2018).

To prune the filters of layer i, ThiNet looks at layer i+1. For a sampled (output filter f,
location) of layer i+1, each input channel c contributes

    x_hat_c = sum_{k1, k2} W[f, c, k1, k2] * x[c, loc + (k1, k2)]       (Eq. 2-3)

and the output (minus bias) is y = sum_c x_hat_c. Removing the channels in T changes y by
sum_{c in T} x_hat_c, so ThiNet solves (Eq. 5)

    T = argmin_T  sum_samples ( sum_{c in T} x_hat_c )^2,  |T| = C - keep

greedily (Algorithm 1): add to T, one at a time, the channel that least increases the objective,
keeping the running sum so that a step costs O(m C). The kept channels S are then re-weighted by
least squares, w = argmin_w sum (y - w . x_hat_S)^2 (Eq. 6), and layer i+1's input slices are
scaled by w. The TPAMI variant selects forward instead: repeatedly add the channel that best fits
the current least-squares residual of y, re-solving least squares on the chosen set each step.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from slimlab.prune.criterion import CONSUMER_INPUT, Criterion, LayerStats, Selection, register_criterion
from slimlab.prune.thinet_refine import refine_selection


def select_channels(x_hat: torch.Tensor, keep: int) -> torch.Tensor:
    """ICCV greedy rule: the sorted indices of the ``keep`` kept channels of ``x_hat`` [m, C]."""
    x = x_hat.double()
    m, c = x.shape
    if not 1 <= keep <= c:
        raise ValueError(f"keep must be in [1, {c}], got {keep}")
    sq = (x * x).sum(0)  # sum_s x_hat_sj^2 for every candidate j
    running = torch.zeros(m, dtype=x.dtype, device=x.device)  # sum over T of x_hat, per sample
    removed = torch.zeros(c, dtype=torch.bool, device=x.device)
    for _ in range(c - keep):
        # sum_s (r_s + x_sj)^2 = sum r^2 + 2 r.x_j + sum x_j^2; sum r^2 is the same for every j
        score = 2 * (running @ x) + sq
        score[removed] = float("inf")
        j = int(torch.argmin(score))
        removed[j] = True
        running += x[:, j]
    return torch.nonzero(~removed).flatten()


def reweight(x_hat: torch.Tensor, y: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Least-squares scale per kept channel: argmin_w ||y - x_hat[:, kept] w||^2 (Eq. 6). With fewer samples than
    kept channels the system is under-determined and gelsd's minimum-norm answer fits the samples, not the layer:
    a warning says so (more calibration images, or ``samples_per_weight``)."""
    a = x_hat[:, kept].double()
    if a.shape[0] <= a.shape[1]:
        warnings.warn(f"ThiNet re-weighting: {a.shape[0]} samples for {a.shape[1]} kept channels, an under-determined "
                      "least squares; give more calibration images or samples_per_weight (e.g. 10)", stacklevel=2)
    return torch.linalg.lstsq(a, y.double()[:, None], driver="gelsd").solution.flatten().to(x_hat.dtype)


def select_channels_tpami(x_hat: torch.Tensor, y: torch.Tensor, keep: int) -> torch.Tensor:
    """TPAMI variant: forward selection against the least-squares residual of ``y``."""
    x, t = x_hat.double(), y.double()
    m, c = x.shape
    if not 1 <= keep <= c:
        raise ValueError(f"keep must be in [1, {c}], got {keep}")
    chosen: list[int] = []
    resid = t.clone()
    norms = (x * x).sum(0).clamp_min(1e-20)
    for _ in range(keep):
        gain = (resid @ x) ** 2 / norms  # the residual reduction of fitting one more channel
        if chosen:
            gain[chosen] = -1.0
        chosen.append(int(torch.argmax(gain)))
        a = x[:, chosen]
        w = torch.linalg.lstsq(a, t[:, None], driver="gelsd").solution
        resid = t - (a @ w).flatten()
    return torch.tensor(sorted(chosen), dtype=torch.long)


def objective(x_hat: torch.Tensor, kept: torch.Tensor) -> float:
    """sum_s (sum_{c removed} x_hat_sc)^2: ThiNet's Eq. 5 objective for a kept set."""
    mask = torch.ones(x_hat.shape[1], dtype=torch.bool)
    mask[kept] = False
    return float((x_hat[:, mask].double().sum(1) ** 2).sum())


def _padding(conv: nn.Conv2d) -> tuple[tuple[int, int], tuple[int, int]]:
    """(top, bottom), (left, right) padding of ``conv``, resolving ``'same'`` / ``'valid'`` as PyTorch does."""
    if conv.padding == "valid":
        return (0, 0), (0, 0)
    if conv.padding == "same":
        out = []
        for d, k in zip(conv.dilation, conv.kernel_size):
            total = d * (k - 1)
            out.append((total // 2, total - total // 2))
        return out[0], out[1]
    ph, pw = conv.padding
    return (ph, ph), (pw, pw)


def collect_samples(x: torch.Tensor, conv: nn.Conv2d, per_image: int = 10,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Contributions ``x_hat`` [m, C] and targets ``y`` [m] (output minus bias) of ``conv``.

    ``x`` is conv's input [N, C, H, W]; ``per_image`` random (filter, location) pairs are drawn per
    image, and only those windows are gathered (the feature map is never unfolded whole).
    """
    if conv.groups != 1:
        raise ValueError("ThiNet needs a dense (groups=1) next layer")
    n, c, h, w = x.shape
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    dh, dw = conv.dilation
    (pt, pb), (pl, pr) = _padding(conv)
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    g = generator or torch.Generator().manual_seed(0)
    m = n * per_image
    img = torch.arange(n).repeat_interleave(per_image)
    f = torch.randint(0, conv.out_channels, (m,), generator=g)
    oh = torch.randint(0, ho, (m,), generator=g)
    ow = torch.randint(0, wo, (m,), generator=g)
    dev = x.device
    img, f, oh, ow = img.to(dev), f.to(dev), oh.to(dev), ow.to(dev)
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    xp = F.pad(x, (pl, pr, pt, pb), mode=mode)
    rows = oh[:, None] * sh + torch.arange(kh, device=dev) * dh  # [m, kh]
    cols = ow[:, None] * sw + torch.arange(kw, device=dev) * dw  # [m, kw]
    patches = xp[img[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # [m, kh, kw, C]
    wf = conv.weight.detach().to(dev, x.dtype)[f]  # [m, C, kh, kw]
    x_hat = torch.einsum("sabc,scab->sc", patches, wf)
    return x_hat, x_hat.sum(1)


def samples_per_image(per_image: int, per_weight: float, keep: int, images: int) -> int:
    """Samples drawn per calibration image: ``per_image``, raised until the least squares of Eq. 6 (``keep``
    weights) see at least ``per_weight`` samples per weight. The paper: 10 per image, m = 100,000 on ImageNet."""
    if per_weight <= 0 or images <= 0:
        return per_image
    return max(per_image, math.ceil(per_weight * keep / images))


class ThiNet(Criterion):
    """ThiNet as a criterion: sample layer i+1's input, select (ICCV greedy or TPAMI), re-weight (Eq. 6).

    With ``stats.target_responses`` the least squares fit the given responses (the unpruned model's)
    at the same sampled positions instead of the current model's."""

    name = "thinet"
    needs = frozenset({CONSUMER_INPUT})
    reweights = True

    def select(self, layer, keep: int, stats: LayerStats, generator: torch.Generator) -> Selection:
        state = generator.get_state()
        per_image = samples_per_image(self.options.per_image, self.options.samples_per_weight, keep,
                                      len(stats.consumer_input))
        x_hat, y = collect_samples(stats.consumer_input, layer.consumer, per_image, generator)
        if stats.target_responses is not None:
            y = stats.target_responses(torch.Generator().set_state(state), per_image)
        if self.options.variant == "tpami":
            kept = select_channels_tpami(x_hat, y, keep)
        else:
            kept = select_channels(x_hat, keep)
        if self.options.refine:  # never worse than greedy after re-weighting (thinet_refine.refine_selection)
            kept, _ = refine_selection(x_hat, y, kept)
        w = reweight(x_hat, y, kept) if len(kept) < layer.conv.out_channels else None
        return Selection(kept, w)

    def scores(self, layer, stats: LayerStats, generator: torch.Generator) -> torch.Tensor:
        """Eq. 5 for one channel: sum_s x_hat_sc^2, the error of removing c alone, over the response energy."""
        x_hat, y = collect_samples(stats.consumer_input, layer.consumer, self.options.per_image, generator)
        return (x_hat.double() ** 2).sum(0) / (y.double() ** 2).sum().clamp_min(1e-30)


register_criterion(ThiNet)
