import math

import pytest
import torch
import torchvision

from slimlab.models import create_model
from slimlab.profile import count_macs, count_params
from slimlab.scaling import EFFICIENTNET, compound, flops_factor
from slimlab.scaling.search import candidates, scale


def test_compound_rule():
    d, w, r = compound(2, 1.2, 1.1, 1.15)
    assert (d, w, r) == pytest.approx((1.44, 1.21, 1.3225))
    assert flops_factor(1.2, 1.1, 1.15) == pytest.approx(1.2 * 1.21 * 1.3225)  # ~1.92, the paper's "about 2"
    with pytest.raises(ValueError):
        compound(1, 0.9, 1.1, 1.1)


def test_released_coefficients_are_not_exact_powers():
    # B7: width 2.0 vs 1.1^7 = 1.95, depth 3.1 vs 1.2^7 = 3.58, resolution 600 vs 224 * 1.15^7 = 596
    w, d, res, _ = EFFICIENTNET["efficientnet_b7"]
    dd, ww, rr = compound(7)
    assert (w, d, res) == (2.0, 3.1, 600)
    assert abs(ww - w) > 0.04 and abs(dd - d) > 0.4 and abs(224 * rr - res) > 3


@pytest.mark.parametrize("name,published_m", [("mobilenet_v1", 4.2), ("mobilenet_v2", 3.5), ("mobilenet_v3_large", 5.5),
                                              ("mobilenet_v3_small", 2.5), ("efficientnet_b0", 5.3),
                                              ("efficientnet_b1", 7.8), ("efficientnet_b2", 9.1),
                                              ("efficientnet_b3", 12.2), ("efficientnet_b4", 19.3),
                                              ("efficientnet_b5", 30.4), ("efficientnet_b6", 43.0),
                                              ("efficientnet_b7", 66.3)])
def test_published_parameter_counts(name, published_m):
    assert round(count_params(create_model(name, 1000)) / 1e6, 1) == pytest.approx(published_m, abs=0.051)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0",
                                  "efficientnet_b3", "efficientnet_b7"])
def test_parameter_count_equals_torchvision_to_the_unit(name):
    assert count_params(create_model(name, 1000)) == count_params(torchvision.models.get_model(name, num_classes=1000))


@pytest.mark.parametrize("name,published_macs,tol", [("mobilenet_v1", 569e6, 0.01), ("mobilenet_v2", 300e6, 0.01),
                                                     ("mobilenet_v3_large", 219e6, 0.02),
                                                     ("mobilenet_v3_small", 56e6, 0.02),
                                                     ("efficientnet_b0", 390e6, 0.02)])
def test_published_macs_at_224(name, published_macs, tol):
    # SE multiplications and activations are not counted (conv/linear only), hence a small tolerance
    assert count_macs(create_model(name, 1000), 224) == pytest.approx(published_macs, rel=tol)


def test_width_multiplier_scales_macs_quadratically():
    m1 = count_macs(create_model("mobilenet_v1", 1000, width_mult=1.0), 224)
    m05 = count_macs(create_model("mobilenet_v1", 1000, width_mult=0.5), 224)
    assert m05 / m1 == pytest.approx(0.25, abs=0.03)  # Howard et al., Table 6: 569M -> 149M
    # resolution multiplier: 160/224 of the resolution -> (160/224)^2 of the MACs (Table 7: 569M -> 290M)
    assert count_macs(create_model("mobilenet_v1", 1000), 160) / m1 == pytest.approx((160 / 224) ** 2, rel=0.01)


def test_cifar_stem_keeps_an_8x_downsampling():
    for name in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"):
        m = create_model(name, 10, cifar_stem=True).eval()
        assert m.forward_features(torch.zeros(1, 3, 32, 32)).shape[-1] == 4, name
        assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_scaled_models_follow_the_rule():
    s = scale("efficientnet_b0", 1, 1.2, 1.1, 1.15)
    assert s.model_kwargs == pytest.approx({"width_mult": 1.1, "depth_mult": 1.2}) and s.resolution == 258
    r = scale("resnet20", 2, 1.2, 1.1, 1.15, base_resolution=32)
    m = create_model("resnet20", 10, **r.model_kwargs)
    assert len(m.layer1) == math.ceil(3 * 1.44) and m.layer1[0].conv1.out_channels == round(16 * 1.21)
    # measured MACs grow faster than the nominal 1.92^phi (ceil'd repeats, rounded channels): reported, not hidden
    base = count_macs(create_model("efficientnet_b0", 10, cifar_stem=True), 32)
    s1 = scale("efficientnet_b0", 1, 1.2, 1.1, 1.15, base_resolution=32)
    scaled = count_macs(create_model("efficientnet_b0", 10, cifar_stem=True, **s1.model_kwargs), s1.resolution)
    assert 1.8 < scaled / base < 3.0


def test_grid_candidates_respect_the_budget():
    cands = candidates(2.0, 0.1)
    assert cands and all(min(c) >= 1.0 for c in cands)
    assert all(abs(flops_factor(*c) - 2.0) <= 0.3 for c in cands)
    assert (1.2, 1.1, 1.1) in cands or (1.2, 1.1, 1.2) in cands
