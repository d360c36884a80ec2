import json

import pytest
import torch
import torch.nn as nn

from conftest import run_cli
from slimlab.errors import SlimlabError
from slimlab.models import create_model
from slimlab.profile import count_macs, count_params
from slimlab.prune import Calibration, apoz_scores, prune_model, ratio_for_macs, weight_sum_scores


def test_weight_sum_scores_by_hand():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.5], [-3.0, 0.0]]).view(3, 2, 1, 1))
    assert weight_sum_scores(conv).tolist() == [3.0, 1.0, 3.0]


def test_apoz_scores_by_hand():
    a = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]], [[2.0, 3.0], [0.0, 1.0]]],
                      [[[0.0, 0.0], [5.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]])  # [N=2, C=2, 2, 2]
    # channel 0: 6 zeros of 8; channel 1: 1 zero of 8
    assert apoz_scores(a).tolist() == [0.75, 0.125]


def _calib(n=40, size=32):
    g = torch.Generator().manual_seed(0)
    return Calibration(torch.randn(n, 3, size, size, generator=g))


@pytest.mark.parametrize("method", ["thinet", "apoz", "l1", "random"])
def test_ratio_one_changes_no_output(method):
    m = create_model("resnet20").eval()
    x = torch.randn(4, 3, 32, 32)
    before = m(x)
    prune_model(m, method, 1.0, _calib())
    assert torch.equal(m(x), before)


@pytest.mark.parametrize("name,size", [("resnet20", 32), ("vgg16", 32), ("tv:resnet18", 32),
                                       ("tv:mobilenet_v2", 32), ("mobilenet_v2", 32), ("efficientnet_b0", 32)])
def test_models_prune_and_run(name, size):
    m = create_model(name, 10).eval()
    params, macs = count_params(m), count_macs(m, size)
    info = prune_model(m, "thinet", 0.5, _calib(30, size), input_size=size)
    assert info["channels"]
    for layer, (before, kept) in info["channels"].items():
        assert kept == before // 2
        assert m.get_submodule(layer).out_channels == kept
    assert m(torch.randn(2, 3, size, size)).shape == (2, 10)
    assert count_params(m) < params and count_macs(m, size) < macs


def test_default_layers_are_thinets_choice():
    m = create_model("resnet20")
    info = prune_model(m, "l1", 0.5, None)
    assert sorted(info["channels"]) == sorted(f"layer{s}.{b}.conv1" for s in (1, 2, 3) for b in range(3))
    v = create_model("vgg16")
    info = prune_model(v, "l1", 0.5, None)
    assert len(info["channels"]) == 10  # conv1_1 .. conv4_3; the last block is kept


def test_thinet_layerwise_reconstructs_better_than_random():
    """On a trained-like signal, ThiNet's pruned network stays closer to the original than random."""
    torch.manual_seed(0)
    base = create_model("convnet", 10, width=16).eval()
    calib = _calib(60)
    x = calib.images
    ref = base(x).detach()
    errs = {}
    for method in ("thinet", "random"):
        m = create_model("convnet", 10, width=16).eval()
        m.load_state_dict(base.state_dict())
        prune_model(m, method, 0.5, calib)
        with torch.no_grad():
            errs[method] = float(((m(x) - ref) ** 2).mean())
    assert errs["thinet"] < errs["random"]


def test_thinet_original_target_reweights_to_the_unpruned_responses():
    """Layer 1 has nothing pruned before it: both targets agree. Later layers: w = lstsq(x_hat_S, y_original)."""
    from slimlab.prune import thinet
    from slimlab.prune.graph import build_graph, find_prunable
    from slimlab.prune.pruner import select_layer

    torch.manual_seed(0)
    base = create_model("convnet", 10, width=16).eval()
    calib = _calib(30)
    one = {}
    for target in ("current", "original"):
        m = create_model("convnet", 10, width=16).eval()
        m.load_state_dict(base.state_dict())
        prune_model(m, "thinet", 0.5, calib, layers=["features.0"], target=target)
        one[target] = m.state_dict()
    assert all(torch.equal(one["current"][k], one["original"][k]) for k in one["current"])
    # select_layer with a target: the scales are the least-squares fit to that target
    m = create_model("convnet", 10, width=16).eval()
    layer = find_prunable(m, build_graph(m, 32), None)[0]
    x = calib.inputs_of(m, [layer.consumer])[0]
    y_other = torch.randn(30 * 10, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(1)
    kept, w = select_layer("thinet", layer, 8, None, x, "iccv", 10, g, target=lambda gen: y_other)
    x_hat, _ = thinet.collect_samples(x, layer.consumer, 10, torch.Generator().manual_seed(1))
    assert torch.equal(kept, thinet.select_channels(x_hat, 8))
    assert torch.allclose(w, thinet.reweight(x_hat, y_other, kept), atol=1e-5)


def test_thinet_original_target_stays_closer_to_the_unpruned_network():
    torch.manual_seed(0)
    base = create_model("convnet", 10, width=16).eval()
    calib = _calib(60)
    ref = base(calib.images).detach()
    errs = {}
    for target in ("current", "original"):
        m = create_model("convnet", 10, width=16).eval()
        m.load_state_dict(base.state_dict())
        prune_model(m, "thinet", 0.5, calib, target=target)
        with torch.no_grad():
            errs[target] = float(((m(calib.images) - ref) ** 2).mean())
    assert errs["original"] < errs["current"], errs
    with pytest.raises(SlimlabError, match="unknown ThiNet target"):
        prune_model(base, "thinet", 0.5, calib, target="future")


def test_target_macs_bisection():
    m = create_model("resnet20")
    base = count_macs(m, 32)
    r = ratio_for_macs(m, 0.6, 32)
    prune_model(m, "l1", r, None)
    frac = count_macs(m, 32) / base
    assert frac <= 0.6 and frac > 0.55


def test_prune_cli_end_to_end(tmp_path):
    run = tmp_path / "base"
    r = run_cli("train", "--data", "fake", "--model", "resnet20", "--epochs", "1", "--out", str(run))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "pruned"
    r = run_cli("prune", str(run / "best.pt"), "--method", "thinet", "--target-macs", "0.6", "--finetune-epochs",
                "1", "--calib-per-class", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["pruned"]["macs"] <= 0.6 * s["original"]["macs"]
    assert s["params"] < s["original"]["params"] and "finetuned" in s and s["latency_speedup"]["batch1"] > 0
    assert (out / "channels.png").is_file() and (out / "best.pt").is_file()
    ev = run_cli("evaluate", str(out / "best.pt"), "--json")
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["macs"] == s["pruned"]["macs"]
    prof = run_cli("profile", str(out / "best.pt"), "--batch", "1", "--iters", "3")
    assert prof.returncode == 0 and "MACs" in prof.stdout
    bad = run_cli("prune", str(run / "best.pt"), "--method", "magic")
    assert bad.returncode == 2 and "unknown pruning method" in bad.stderr


def test_explicit_layers_and_their_errors():
    from slimlab.errors import SlimlabError

    m = create_model("resnet20")
    info = prune_model(m, "l1", 0.5, None, layers=["layer2.1.conv1"])
    assert list(info["channels"]) == ["layer2.1.conv1"] and m.layer2[1].conv1.out_channels == 16
    with pytest.raises(SlimlabError, match="tied to a residual sum"):
        prune_model(create_model("resnet20"), "l1", 0.5, None, layers=["layer2.1.conv2"])
    with pytest.raises(SlimlabError, match="no such layer"):
        prune_model(create_model("resnet20"), "l1", 0.5, None, layers=["layer9.conv1"])
