"""Criteria as registered objects: one name per method (aliases kept), a new criterion is one class."""

import pytest
import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.models import create_model
from slimlab.prune import (
    CRITERIA,
    Calibration,
    Criterion,
    LayerStats,
    Selection,
    build_criterion,
    canonical_name,
    prune_model,
    register_criterion,
)
from slimlab.prune.apoz import apoz_scores
from slimlab.prune.criterion import CriterionOptions
from slimlab.prune.graph import build_graph, find_prunable


def test_registry_names_and_aliases():
    assert {"thinet", "apoz", "weight_sum", "random"} <= set(CRITERIA)
    assert canonical_name("l1") == "weight_sum"
    assert build_criterion("l1").name == "weight_sum"
    with pytest.raises(SlimlabError, match="unknown pruning method 'l2'"):
        build_criterion("l2")


def test_needs_are_declared():
    assert build_criterion("thinet").needs == {"consumer_input"}
    assert build_criterion("apoz").needs == {"activation"}
    assert build_criterion("apoz", CriterionOptions(apoz_at="first_input")).needs == {"first_input"}
    assert build_criterion("weight_sum").needs == set() and build_criterion("random").needs == set()


def test_weight_sum_criterion_keeps_the_largest_filters():
    m = create_model("resnet20")
    layer = find_prunable(m, build_graph(m))[0]
    with torch.no_grad():
        layer.conv.weight.zero_()
        for j in (3, 7, 11):
            layer.conv.weight[j] = j  # by hand: only these filters have weight
    sel = build_criterion("weight_sum").select(layer, 3, LayerStats(), torch.Generator())
    assert sel.kept.tolist() == [3, 7, 11] and sel.scales is None


class KeepLast(Criterion):
    """A user criterion in a few lines: keep the highest-numbered channels."""

    name = "keep_last_test"

    def select(self, layer, keep, stats, generator):
        c = layer.conv.out_channels
        return Selection(torch.arange(c - keep, c))


def test_a_registered_criterion_prunes_through_the_schedules():
    register_criterion(KeepLast, aliases=("last",))
    try:
        for mode in ("layerwise", "oneshot"):
            m = create_model("resnet20")
            first = find_prunable(m, build_graph(m))[0]
            w_last = first.conv.weight[8:].detach().clone()  # the 8 channels that must survive
            info = prune_model(m, "last", 0.5, None, mode=mode)
            assert info["channels"][first.name] == [16, 8]
            assert torch.equal(m.get_submodule(first.name).weight, w_last)
            assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        # an object works too, without registering
        m = create_model("resnet20")
        prune_model(m, KeepLast(), 0.5, None)
    finally:
        CRITERIA.pop("keep_last_test")
        from slimlab.prune.criterion import ALIASES

        ALIASES.pop("last")


def test_criterion_needing_data_without_calibration_is_an_error():
    with pytest.raises(SlimlabError, match="needs calibration data"):
        prune_model(create_model("resnet20"), "thinet", 0.5, None)


def test_apoz_criterion_gets_its_activations_from_the_schedule():
    torch.manual_seed(0)
    m = create_model("resnet20").eval()
    calib = Calibration(torch.randn(8, 3, 32, 32))
    plan = find_prunable(m, build_graph(m))
    st = calib.stats(m, plan[:1], build_criterion("apoz", CriterionOptions(apoz_at="first_input")).needs)[0]
    assert st.first_input is not None and st.consumer_input is None
    assert st.first_input.shape[1] == plan[0].conv.out_channels
    st = calib.stats(m, plan[:1], build_criterion("apoz").needs)[0]
    assert st.activation is not None and st.first_input is None


def test_apoz_counts_the_relu_output_before_pooling():
    """VGG-like: conv -> BN -> ReLU -> max-pool -> conv. The paper's APoZ counts zeros of the ReLU output; the
    pooled next-conv input has fewer (a max over a window is zero only if all four are)."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(6, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.randn(16, 3, 8, 8)
    calib = Calibration(x)
    plan = find_prunable(m, build_graph(m, 8))
    st = calib.stats(m, plan[:1], frozenset({"activation", "first_input"}))[0]
    relu_out = m[2](m[1](m[0](x))).detach()  # computed another way: the modules by hand
    assert torch.allclose(apoz_scores(st.activation), apoz_scores(relu_out).to(torch.float64))
    assert (apoz_scores(st.first_input) <= apoz_scores(relu_out) + 1e-12).all()
    assert (apoz_scores(st.first_input) < apoz_scores(relu_out) - 1e-3).any()


def test_apoz_with_an_inplace_relu_before_batchnorm_counts_the_relus_zeros():
    """conv -> ReLU(inplace) -> BN: the BN reads the conv's output tensor after the ReLU changed it in place; its
    output is not the pre-activation (APoZ counted BN outputs <= 0, not the ReLU's zeros)."""
    torch.manual_seed(0)
    for inplace in (False, True):
        m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=inplace), nn.BatchNorm2d(4),
                          nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
        with torch.no_grad():
            m[2].running_mean.fill_(0.5)
        x = torch.randn(16, 3, 8, 8)
        plan = find_prunable(m, build_graph(m, 8))
        st = Calibration(x).stats(m, plan[:1], frozenset({"activation"}))[0]
        relu_out = torch.relu(m[0](x)).detach()
        assert torch.allclose(apoz_scores(st.activation), apoz_scores(relu_out).to(torch.float64)), inplace


def test_keep_ratio_and_ratio_are_the_same_option():
    from slimlab.config import from_dict
    from slimlab.prune import PruneConfig

    a = from_dict(PruneConfig, {"ratio": 0.3})
    b = from_dict(PruneConfig, {"keep_ratio": 0.3})
    assert a == b and a.ratio == 0.3
    with pytest.raises(SlimlabError, match="not both"):
        from_dict(PruneConfig, {"ratio": 0.3, "keep_ratio": 0.4})


def test_nn_module_is_pruned_by_name_too():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    info = prune_model(net, "weight_sum", 0.5, None)
    assert list(info["channels"].values()) == [[8, 4]] and net[3].in_channels == 4
