"""EfficientNet as the TF reference builds it, and a search grid that holds the paper's point."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn as nn

from slimlab.models import create_model
from slimlab.models.layers import make_divisible
from slimlab.scaling.search import PAPER_POINT, candidates


def test_tf_batchnorm_settings_by_default_and_pytorchs_on_request():
    bns = [m for m in create_model("efficientnet_b0", 10).modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and {(m.eps, m.momentum) for m in bns} == {(1e-3, 0.01)}
    bns = [m for m in create_model("efficientnet_b0", 10, bn_eps=1e-5, bn_momentum=0.1).modules()
           if isinstance(m, nn.BatchNorm2d)]
    assert {(m.eps, m.momentum) for m in bns} == {(1e-5, 0.1)}


def test_head_is_round_filters_of_1280():
    for w, want in ((1.0, 1280), (1.21, 1552), (2.0, 2560)):
        m = create_model("efficientnet_b0", 10, width_mult=w)
        assert m.classifier[-1].in_features == want == make_divisible(1280 * w)
    # the old rule, 4x the last stage, gave 1536 at w = 1.21
    assert 4 * make_divisible(320 * 1.21) == 1536


def test_default_grid_contains_the_papers_point():
    assert PAPER_POINT in candidates(2.0, 0.05)


def test_papers_point_is_a_candidate_on_a_coarse_grid_too():
    assert PAPER_POINT in candidates(2.0, 0.1)  # 1.15 is not on a 0.1 grid: added
    assert PAPER_POINT not in candidates(4.0, 0.1)  # but only where it meets the budget


def test_the_search_itself_trains_the_papers_point_and_marks_it():
    """admissible() filters on measured MACs, where repeats round up: the paper's point measures well above 2x on
    EfficientNet-B0, yet the search must train it (and say what it measured)."""
    from slimlab.scaling.search import admissible

    points = admissible("efficientnet_b0", 2.0, 0.1, 0.05, 10, 32, max_candidates=4)
    paper = [p for p in points if np.allclose(p[:3], PAPER_POINT)]
    assert len(points) <= 5 and len(paper) == 1
    assert paper[0][3] > 2.2  # measured outside the band: trained anyway, its ratio recorded
    others = [p for p in points if p is not paper[0]]
    assert others and all(abs(p[3] - 2.0) <= 0.2 for p in others)


def test_the_search_chooses_only_inside_the_measured_macs_band():
    """The paper's point is trained whatever it measures, but at 2.66x it must not beat 2x points by spending more."""
    from slimlab.tasks.scale import choose

    def row(a, b, g, ratio, val):
        return {"alpha": a, "beta": b, "gamma": g, "macs_ratio": ratio, "val_acc": val}

    paper = row(1.2, 1.1, 1.15, 2.66, 0.90)
    inside = [row(1.4, 1.1, 1.05, 2.05, 0.80), row(1.1, 1.2, 1.05, 1.95, 0.82), row(1.0, 1.1, 1.2, 2.0, 0.82)]
    assert choose([paper, *inside], 2.0, 0.1) is inside[2]  # best inside; a tie goes to the closest to 2x
    assert choose([paper], 2.0, 0.1) is paper  # nothing inside the band: the rows compete as they are
    assert choose([row(1, 1, 1, 2.19, 0.7), row(1, 1, 1, 2.21, 0.9)], 2.0, 0.1)["macs_ratio"] == 2.19


def test_one_candidate_still_trains_a_point_inside_the_band_beside_the_papers():
    """--max-candidates 1: the paper's point (2.66x, outside the band) is trained beside one in-band point, never in
    its place (else the search would choose a point that spends a third more MACs)."""
    from slimlab.scaling.search import admissible

    points = admissible("efficientnet_b0", 2.0, 0.1, 0.05, 10, 32, max_candidates=1)
    assert len(points) == 2 and np.allclose(points[1][:3], PAPER_POINT)
    assert abs(points[0][3] - 2.0) <= 0.2 and points[1][3] > 2.2


def test_apply_keeps_the_bases_own_arguments():
    from slimlab.models import create_model
    from slimlab.profile import count_macs
    from slimlab.scaling.search import describe

    r = describe("efficientnet_b0", 1, 1.2, 1.1, 1.15, 10, 32, cifar_stem=True)
    assert r["model_kwargs"]["cifar_stem"] is True and r["resolution"] == 37
    m = create_model("efficientnet_b0", 10, **r["model_kwargs"])
    assert r["macs"] == count_macs(m, 37)
    assert r["macs_ratio"] == r["macs"] / count_macs(create_model("efficientnet_b0", 10, cifar_stem=True), 32)


def test_a_users_own_builder_with_multipliers_can_be_scaled(tmp_path, monkeypatch):
    from slimlab.errors import SlimlabError
    from slimlab.models.registry import allow_module
    from slimlab.scaling.search import scale

    (tmp_path / "scalable_nets.py").write_text(
        "from slimlab.models import create_model\n"
        "def build(num_classes=10, width_mult=1.0, depth_mult=1.0):\n"
        "    return create_model('resnet20', num_classes, width_mult=width_mult, depth_mult=depth_mult)\n"
        "def fixed(num_classes=10):\n"
        "    return create_model('resnet20', num_classes)\n")
    monkeypatch.chdir(tmp_path)
    allow_module("scalable_nets")
    s = scale("module:scalable_nets:build", 1, 1.2, 1.1, 1.15, base_resolution=32)
    assert s.model_kwargs == pytest.approx({"width_mult": 1.1, "depth_mult": 1.2})
    with pytest.raises(SlimlabError, match="cannot be compound-scaled"):
        scale("module:scalable_nets:fixed", 1, 1.2, 1.1, 1.15, base_resolution=32)
    with pytest.raises(SlimlabError, match="cannot be compound-scaled"):  # its wrapper's **kwargs do not count
        scale("tv:resnet18", 1, 1.2, 1.1, 1.15, base_resolution=32)
