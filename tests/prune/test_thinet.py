import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

from slimlab.prune import thinet


def reference_greedy(x: torch.Tensor, keep: int) -> list[int]:
    """Algorithm 1 of the paper written plainly: recompute the objective for every candidate."""
    c = x.shape[1]
    removed: list[int] = []
    while len(removed) < c - keep:
        best, best_val = None, None
        for j in range(c):
            if j in removed:
                continue
            val = float((x[:, removed + [j]].double().sum(1) ** 2).sum())
            if best_val is None or val < best_val:
                best, best_val = j, val
        removed.append(best)
    return sorted(set(range(c)) - set(removed))


def problem(seed: int, m: int = 60, c: int = 10) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = torch.rand(c, generator=g) * 2  # channels of different importance
    return torch.randn(m, c, generator=g) * scale + 0.3 * torch.randn(m, 1, generator=g)


@pytest.mark.parametrize("seed", range(8))
def test_select_channels_equals_plain_reference(seed):
    x = problem(seed, c=9 + seed % 4)
    for keep in (1, 3, x.shape[1] // 2, x.shape[1] - 1, x.shape[1]):
        assert thinet.select_channels(x, keep).tolist() == reference_greedy(x, keep)


def _compare(x: torch.Tensor, keep: int, seed: int) -> tuple[float, float, float]:
    greedy = thinet.objective(x, thinet.select_channels(x, keep))
    best = min(thinet.objective(x, torch.tensor(s)) for s in itertools.combinations(range(x.shape[1]), keep))
    g = torch.Generator().manual_seed(seed)
    rand_best = min(thinet.objective(x, torch.randperm(x.shape[1], generator=g)[:keep]) for _ in range(100))
    return greedy, best, rand_best


def test_greedy_against_exhaustive_optimum_and_random_subsets(capsys):
    """Contribution-like problems: channels independent, of different importance, plus a shared part."""
    ratios = []
    for seed in range(12):
        x = problem(100 + seed, m=80, c=12)
        greedy, best, rand_best = _compare(x, 6, seed)
        assert greedy >= best - 1e-9  # the exhaustive search is the optimum
        assert greedy <= rand_best + 1e-9  # never worse than the best of 100 random subsets
        ratios.append(greedy / best)
    with capsys.disabled():
        print(f"\n  ThiNet greedy / exhaustive optimum, 12 problems (C=12, keep 6): "
              f"mean {np.mean(ratios):.3f}, worst {max(ratios):.3f}")


def test_greedy_on_strongly_correlated_channels(capsys):
    """Mixed (correlated) channels: greedy is not optimal here; we report by how much."""
    ratios, beaten = [], 0
    for seed in range(12):
        g = torch.Generator().manual_seed(200 + seed)
        x = torch.randn(80, 12, generator=g) @ torch.randn(12, 12, generator=g)
        greedy, best, rand_best = _compare(x, 6, seed)
        assert greedy >= best - 1e-9
        ratios.append(greedy / best)
        beaten += greedy > rand_best + 1e-9
    with capsys.disabled():
        print(f"\n  correlated channels: greedy / optimum mean {np.mean(ratios):.2f}, worst {max(ratios):.2f}; "
              f"best of 100 random subsets beat greedy in {beaten} of 12")
    assert np.median(ratios) < 3.0


def test_reweight_equals_numpy_lstsq_and_never_hurts():
    for seed in range(5):
        x = problem(seed, m=100, c=10)
        y = x.sum(1)
        kept = thinet.select_channels(x, 5)
        w = thinet.reweight(x, y, kept)
        ref = np.linalg.lstsq(x[:, kept].double().numpy(), y.double().numpy(), rcond=None)[0]
        assert np.allclose(w.double().numpy(), ref, atol=1e-5)
        before = float(((y - x[:, kept].sum(1)) ** 2).sum())
        after = float(((y - x[:, kept] @ w) ** 2).sum())
        assert after <= before + 1e-6


def test_collect_samples_reconstructs_conv_output():
    torch.manual_seed(0)
    cases = [(3, 1, 1, 1, "zeros"), (3, 2, 1, 1, "zeros"), (3, 1, 2, 2, "zeros"), (3, 2, 0, 1, "zeros"),
             ((2, 4), 1, "same", 1, "zeros"), (3, 1, "same", 2, "zeros"), (3, 1, "valid", 1, "zeros"),
             (3, 1, 1, 1, "reflect"), (3, 2, 2, 1, "circular"), (3, 1, 1, 1, "replicate")]
    for k, stride, pad, dil, mode in cases:
        conv = nn.Conv2d(5, 7, k, stride=stride, padding=pad, dilation=dil, bias=True, padding_mode=mode)
        x = torch.randn(4, 5, 9, 9)
        g = torch.Generator().manual_seed(1)
        x_hat, y = thinet.collect_samples(x, conv, per_image=6, generator=g)
        assert x_hat.shape == (24, 5)
        # redo the draws and read the true outputs (minus bias) at the sampled positions
        g = torch.Generator().manual_seed(1)
        out = conv(x).detach() - conv.bias.detach()[None, :, None, None]
        f = torch.randint(0, 7, (24,), generator=g)
        oh = torch.randint(0, out.shape[2], (24,), generator=g)
        ow = torch.randint(0, out.shape[3], (24,), generator=g)
        img = torch.arange(4).repeat_interleave(6)
        assert torch.allclose(y, out[img, f, oh, ow], atol=1e-5)


def test_tpami_variant_recovers_an_exact_subset():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 10, generator=g)
    y = 2.0 * x[:, 1] - 1.5 * x[:, 4] + 0.5 * x[:, 7]
    kept = thinet.select_channels_tpami(x, y, 3)
    assert kept.tolist() == [1, 4, 7]
    w = thinet.reweight(x, y, kept)
    assert torch.allclose(w, torch.tensor([2.0, -1.5, 0.5]), atol=1e-4)
