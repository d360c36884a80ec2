"""--allocation: the knapsack against brute force, global ranking by hand, the linear MACs model against counted
MACs, and the three modes end to end at the same MACs (library and command line)."""

import json
import random

import pytest
import torch

from slimlab.errors import SlimlabError
from slimlab.models import create_model
from slimlab.prune import prune_module
from slimlab.prune.allocation import (
    Shape,
    brute_force,
    choose,
    global_counts,
    normalised,
    predicted_drop,
    read_profile,
    sensitivity_counts,
)


@pytest.mark.parametrize("seed", range(12))
def test_choose_finds_the_brute_force_optimum(seed):
    rng = random.Random(seed)
    layers = rng.randint(1, 4)
    drops = [[rng.choice([0.0, round(rng.uniform(0, 5), 2)]) for _ in range(rng.randint(1, 4))] for _ in range(layers)]
    costs = [[rng.randint(0, 9) for _ in d] for d in drops]
    budget = rng.randint(0, 25)
    best = brute_force(drops, costs, budget)
    if best == float("inf"):
        with pytest.raises(SlimlabError):
            choose(drops, costs, budget)
        return
    pick = choose(drops, costs, budget)
    assert sum(costs[layer][j] for layer, j in enumerate(pick)) <= budget
    assert sum(drops[layer][j] for layer, j in enumerate(pick)) == pytest.approx(best)


def test_predicted_drop_is_linear_between_measured_ratios_and_zero_at_one():
    curve = {0.5: 2.0, 0.25: 10.0}
    assert predicted_drop(curve, 1.0) == 0.0
    assert predicted_drop(curve, 0.75) == pytest.approx(1.0)  # halfway between (0.5, 2) and (1, 0)
    assert predicted_drop(curve, 0.375) == pytest.approx(6.0)
    assert predicted_drop(curve, 0.5) == 2.0


def test_global_ranking_by_hand():
    # normalised by each layer's mean: a -> [0.5, 1, 1.5], b -> [0.2, 0.4, 2.4]
    scores = {"a": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([10.0, 20.0, 120.0])}
    assert normalised(scores["b"]).tolist() == pytest.approx([0.2, 0.4, 2.4])
    keep_four = global_counts(scores, {"a": 1, "b": 1}, lambda k: sum(k.values()) <= 4)
    assert keep_four == {"a": 3, "b": 1}  # b's 0.2 and 0.4 go first, though b's raw scores are larger
    keep_three = global_counts(scores, {"a": 1, "b": 1}, lambda k: sum(k.values()) <= 3)
    assert keep_three == {"a": 2, "b": 1}  # then a's 0.5
    # the floor protects a layer: b keeps two
    assert global_counts(scores, {"a": 1, "b": 2}, lambda k: sum(k.values()) <= 4) == {"a": 2, "b": 2}
    with pytest.raises(SlimlabError, match="floor"):
        global_counts(scores, {"a": 2, "b": 2}, lambda k: sum(k.values()) <= 3)


def test_linear_macs_model_is_exact_on_a_resnet():
    model = create_model("resnet20", 10, width_mult=0.25).eval()
    shape = Shape(model, 16)
    m0, per = shape.linear_costs()
    rng = random.Random(0)
    for _ in range(3):
        counts = {n: rng.randint(1, c) for n, c in shape.channels.items()}
        assert shape.macs(counts) == pytest.approx(m0 + sum(per[n] * k for n, k in counts.items()), rel=1e-9)


def test_sensitivity_counts_spare_the_sensitive_layer():
    model = create_model("resnet20", 10, width_mult=0.25).eval()
    shape = Shape(model, 16)
    names = list(shape.channels)
    profile = {n: {0.75: 0.1, 0.5: 0.2, 0.25: 0.4} for n in names}
    profile[names[0]] = {0.75: 30.0, 0.5: 60.0, 0.25: 90.0}  # pruning this one costs a lot
    target = shape.uniform_macs(0.5)
    counts, drop = sensitivity_counts(profile, shape, target, floor=0.1)
    assert counts[names[0]] == shape.channels[names[0]]
    assert shape.macs(counts) <= target * shape.base
    # and no better choice on the same grid: the uniform ratio predicts more loss
    assert drop < sum(predicted_drop(profile[n], 0.5) for n in names)


def test_read_profile_refuses_what_is_not_one(tmp_path):
    assert read_profile({"layers": {"x": {"0.5": 1}}}, "f") == {"x": {0.5: 1.0}}
    for bad in ({}, {"layers": []}, {"layers": {"x": {"1.5": 1}}}, {"layers": {"x": {"a": 1}}}):
        with pytest.raises(SlimlabError):
            read_profile(bad, "f")


def _batches(n=60, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    return [(x[i: i + 20], torch.randint(0, 10, (20,), generator=g)) for i in range(0, n, 20)]


@pytest.mark.parametrize("method", ["thinet", "weight_sum", "apoz", "random"])
def test_global_allocation_meets_the_uniform_macs_with_other_counts(method):
    torch.manual_seed(0)
    base = create_model("resnet20", 10, width_mult=0.5).eval()
    uniform, ru = prune_module(_copy(base), _batches(), method=method, keep_ratio=0.5, mode="oneshot")
    glob, rg = prune_module(_copy(base), _batches(), method=method, keep_ratio=0.5, mode="oneshot",
                            allocation="global", allocation_floor=0.2)
    assert rg.macs_after <= ru.macs_after
    assert rg.macs_after >= 0.9 * ru.macs_after  # as close as one channel at a time allows
    kept = [k for _, k in rg.channels.values()]
    assert len(set(kept)) > 1  # the counts differ from layer to layer
    assert all(k >= 0.2 * c for c, k in rg.channels.values())
    assert rg.extra["allocation"]["mode"] == "global"


def test_sensitivity_allocation_measures_reuses_and_meets_the_target(tmp_path):
    torch.manual_seed(0)
    base = create_model("resnet20", 10, width_mult=0.5).eval()
    _, r = prune_module(_copy(base), _batches(), method="weight_sum", target_macs=0.6, mode="oneshot",
                        allocation="sensitivity")
    info = r.extra["allocation"]
    assert r.macs_after <= 0.6 * r.macs_before
    assert set(info["profile"]["layers"]) == set(r.channels)
    f = tmp_path / "sensitivity.json"
    f.write_text(json.dumps(info["profile"]))
    _, again = prune_module(_copy(base), _batches(), method="weight_sum", target_macs=0.6, mode="oneshot",
                            allocation="sensitivity", sensitivity=str(f))
    assert again.channels == r.channels
    with pytest.raises(SlimlabError, match="labels"):
        prune_module(_copy(base), [x for x, _ in _batches()], target_macs=0.6, allocation="sensitivity")


def _copy(m):
    import copy

    return copy.deepcopy(m)


def test_prune_command_with_each_allocation(tmp_path):
    from slimlab import api
    from slimlab.config import TrainConfig
    from slimlab.prune.config import PruneConfig

    api.train(TrainConfig(data="digits", model="resnet20", model_kwargs={"width_mult": 0.25}, image_size=16,
                          epochs=1, train_subset=300, val_fraction=0.2, progress="none", out=str(tmp_path / "t")))
    got = {}
    for mode in ("uniform", "global", "sensitivity"):
        got[mode] = api.prune(PruneConfig(checkpoint=str(tmp_path / "t"), method="weight_sum", target_macs=0.6,
                                          allocation=mode, mode="oneshot", sensitivity_images=50, latency=False,
                                          progress="none", out=str(tmp_path / mode)))
        assert got[mode]["macs_reduction"] >= 1 / 0.6 - 1e-9
        assert got[mode]["allocation"]["mode"] == mode
    profile = json.loads((tmp_path / "sensitivity" / "sensitivity.json").read_text())
    assert profile["split"] == "validation" and profile["images"] == 50
    saved = str(tmp_path / "sensitivity" / "sensitivity.json")
    again = api.prune(PruneConfig(checkpoint=str(tmp_path / "t"), method="weight_sum", target_macs=0.6,
                                  allocation="sensitivity", sensitivity=saved,
                                  mode="oneshot", latency=False, progress="none", out=str(tmp_path / "again")))
    assert again["channels"] == got["sensitivity"]["channels"]


def test_allocation_options_fail_in_one_line_before_any_work(tmp_path):
    from conftest import run_cli

    bad = tmp_path / "bad.json"
    bad.write_text('{"layers": 3}')
    for args, said in ((["--allocation", "sideways"], "invalid choice"),
                       (["--allocation-floor", "0"], "allocation_floor"),
                       (["--sensitivity", str(bad)], "for --allocation sensitivity"),
                       (["--allocation", "sensitivity", "--sensitivity", str(bad)], "not a sensitivity profile"),
                       (["--allocation", "sensitivity", "--sensitivity", str(tmp_path / "no.json")], "cannot be read")):
        r = run_cli("prune", "no/such.pt", *args)
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_noisy_negative_drops_neither_help_nor_break_monotonicity():
    curve = {0.75: -0.2, 0.5: 1.0, 0.25: 0.5}  # measured on few images: a "gain" and a dip
    assert predicted_drop(curve, 0.75) == 0.0
    assert predicted_drop(curve, 0.25) == 1.0  # never less than at a higher ratio
    assert predicted_drop(curve, 0.9) == 0.0


def test_linear_costs_count_what_round_to_really_keeps():
    model = create_model("resnet20", 10, width_mult=0.75).eval()
    shape = Shape(model, 16, round_to=8)
    m0, per = shape.linear_costs()
    rng = random.Random(1)
    for _ in range(3):
        counts = {n: shape.rounded(n, rng.randint(1, c)) for n, c in shape.channels.items()}
        assert shape.macs(counts) == pytest.approx(m0 + sum(per[n] * k for n, k in counts.items()), rel=1e-9)


def test_sensitivity_on_a_chain_meets_the_uniform_point_exactly():
    """A VGG's pruned layers feed each other (MACs are not linear in the counts), and the default target is the
    uniform ratio's own MACs: the allocation must still find a fit, never above it."""
    model = create_model("vgg16", 10, width_mult=0.25).eval()
    shape = Shape(model, 32)
    target = shape.uniform_macs(0.5)
    profile = {n: {0.75: 0.5 + i, 0.5: 1.0 + i, 0.25: 4.0} for i, n in enumerate(shape.channels)}
    counts, _ = sensitivity_counts(profile, shape, target, floor=0.1)
    assert shape.macs(counts) <= shape.cap(target)
    assert shape.macs(counts) >= 0.9 * target * shape.base  # not far under the target either
    assert all(k >= 0.25 * shape.channels[n] for n, k in counts.items())  # never below the lowest measured ratio
