"""Your own model from the command line: timm:NAME and module:pkg.mod:callable through train, evaluate and prune;
plain weight files as --init with a match report; --prune-ratio, --round-to, --ignore-layers and BatchNorm
re-estimation in slimlab prune."""

import json

import pytest
import torch

from conftest import run_cli


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("own") / "r20"
    r = run_cli("train", "--data", "digits", "--model", "resnet20", "--epochs", "3", "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_prune_ratio_round_to_ignore_layers_and_bn_reestimation(digits_run, tmp_path):
    out = tmp_path / "p"
    r = run_cli("prune", str(digits_run), "--method", "weight_sum", "--prune-ratio", "0.7", "--round-to", "8",
                "--ignore-layers", "layer3", "--ft-layer-epochs", "0", "--no-latency", "--out", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["keep_ratio"] == pytest.approx(0.3)
    assert s["channels"] and all(k % 8 == 0 for _, k in s["channels"].values())
    assert not any(n.startswith("layer3") for n in s["channels"])
    p = s["pruned"]
    # re-estimating BatchNorm on training images alone (no gradient step) repairs part of the damage
    assert p["bn_images"] == 1000 and p["test_acc"] > p["test_acc_before_bn"] + 0.01, p
    assert p["bn_augmented"] is True  # drawn augmented, as the run trained (its default augmentation)
    assert "before BatchNorm re-estimation on 1000 images" in r.stdout
    r = run_cli("prune", str(digits_run), "--method", "weight_sum", "--keep-ratio", "0.3", "--no-bn-recalibrate",
                "--ft-layer-epochs", "0", "--no-latency", "--out", str(tmp_path / "nobn"))
    assert r.returncode == 0, r.stderr
    s2 = json.loads((tmp_path / "nobn" / "summary.json").read_text())
    assert "test_acc_before_bn" not in s2["pruned"]
    if s2["pruned"]["test_acc"] < 0.15:
        assert "near chance" in r.stderr and "--bn-recalibrate" in r.stderr


def test_keep_and_prune_ratio_together_is_one_line(digits_run):
    r = run_cli("prune", str(digits_run), "--keep-ratio", "0.5", "--prune-ratio", "0.5")
    assert r.returncode == 2 and "not both" in r.stderr and "Traceback" not in r.stderr
    for flag in ("--keep-ratio", "--prune-ratio"):  # the MACs target silently won
        r = run_cli("prune", str(digits_run), flag, "0.5", "--target-macs", "0.5")
        assert r.returncode == 2 and f"give --target-macs or {flag}, not both" in r.stderr, r.stderr


def test_a_timm_model_trains_with_label_noise_and_prunes_with_thinet(tmp_path):
    pytest.importorskip("timm")
    run, pruned = tmp_path / "timm", tmp_path / "timm-thinet"
    r = run_cli("train", "--model", "timm:resnet18", "--data", "fake", "--noise", "symmetric:0.4", "--epochs", "1",
                "--batch-size", "64", "--out", str(run))
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "noise.json").read_text())["realised_rate"] > 0.3
    r = run_cli("prune", str(run), "--method", "thinet", "--keep-ratio", "0.5", "--round-to", "8",
                "--calib-per-class", "2", "--ft-layer-epochs", "0", "--no-latency", "--out", str(pruned))
    assert r.returncode == 0, r.stderr
    s = json.loads((pruned / "summary.json").read_text())
    assert s["method"] == "thinet" and s["macs_reduction"] > 1.3
    assert s["channels"]["layer1.0.conv1"] == [64, 32]
    r = run_cli("evaluate", str(pruned), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["macs"] == s["macs"]


NETS = """import torch.nn as nn
def tiny(num_classes=10, width=16):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
"""


def test_a_module_model_trains_evaluates_and_prunes_and_checkpoints_need_the_module_allowed(tmp_path):
    (tmp_path / "my_cli_nets.py").write_text(NETS)
    (tmp_path / "marker_nets.py").write_text("open('IMPORTED', 'w').write('x')\n" + NETS)
    r = run_cli("train", "--model", "module:my_cli_nets:tiny", "--model-kwargs", "{width: 12}", "--data", "fake",
                "--epochs", "2", "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ck["model_name"] == "module:my_cli_nets:tiny" and ck["model_kwargs"] == {"width": 12}
    r = run_cli("evaluate", "run", cwd=tmp_path)
    assert r.returncode == 2 and "--allow-module my_cli_nets" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("evaluate", "run", "--allow-module", "my_cli_nets", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("prune", "run", "--allow-module", "my_cli_nets", "--method", "thinet", "--ft-layer-epochs", "0",
                "--no-latency", "--out", "pruned", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", "pruned", "--json", cwd=tmp_path, env={"SLIMLAB_ALLOW_MODULES": "my_cli_nets"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"] < json.loads((tmp_path / "run" / "summary.json").read_text())["params"]
    # a checkpoint that names a module nobody allowed never imports it
    ck["model_name"] = "module:marker_nets:tiny"
    torch.save(ck, tmp_path / "stranger.pt")
    r = run_cli("evaluate", "stranger.pt", cwd=tmp_path)
    assert r.returncode == 2 and "not allowed" in r.stderr and not (tmp_path / "IMPORTED").exists()


def test_init_from_a_torchvision_pth_and_a_safetensors_file_reports_the_match(tmp_path):
    import torchvision
    from safetensors.torch import save_file

    tv = torchvision.models.resnet18(num_classes=1000)
    torch.save(tv.state_dict(), tmp_path / "resnet18.pth")
    r = run_cli("train", "--model", "tv:resnet18", "--init", str(tmp_path / "resnet18.pth"), "--data", "fake",
                "--epochs", "1", "--train-subset", "64", "--out", str(tmp_path / "a"), "--json")
    assert r.returncode == 0, r.stderr
    init = json.loads(r.stdout)["init"]
    assert init["tensors_copied"] == len(tv.state_dict()) - 2 and init["head"] == "fresh (another shape)"
    assert "2 of another shape (first: fc.weight (1000, 512) vs (10, 512))" in init["report"]
    sd = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "trunk.safetensors"))
    r = run_cli("train", "--model", "tv:resnet18", "--init", str(tmp_path / "trunk.safetensors"), "--data", "fake",
                "--epochs", "1", "--train-subset", "64", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert f"{len(sd)} tensors copied" in r.stdout and "2 left as initialised (first: fc.weight)" in r.stdout
    ck = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert ck["init"]["tensors_copied"] == len(sd)
    (tmp_path / "junk.pth").write_text("not weights")
    r = run_cli("train", "--model", "tv:resnet18", "--init", str(tmp_path / "junk.pth"), "--data", "fake",
                "--epochs", "1", "--out", str(tmp_path / "c"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_a_module_named_by_a_file_is_never_imported_without_allow_module(tmp_path):
    """A recipe, a --config or a run's config.yaml from someone else cannot make slimlab import code: only a name
    typed on the command line (--model, --set model=) or --allow-module allows a module."""
    (tmp_path / "marker_nets.py").write_text("open('IMPORTED', 'w').write('x')\n" + NETS)
    model = "module:marker_nets:tiny"
    (tmp_path / "evil.yaml").write_text(
        f"steps: [{{name: t, kind: train, with: {{data: fake, model: '{model}', epochs: 1, train_subset: 32}}}}]\n")
    (tmp_path / "cfg.yaml").write_text(f"model: '{model}'\ndata: fake\nepochs: 1\ntrain_subset: 32\n")
    (tmp_path / "dl").mkdir()
    for argv in (("run", "evil.yaml", "--out", "o"), ("train", "--config", "cfg.yaml", "--out", "c"),
                 ("train", "--resume", "dl"), ("labels", "dl")):
        (tmp_path / "dl" / "config.yaml").write_text(  # a downloaded run's, with a run's header
            f"# slimlab run 0123456789ab\nmodel: '{model}'\ndata: fake\nepochs: 1\ntrain_subset: 32\n")
        r = run_cli(*argv, cwd=tmp_path)
        assert r.returncode == 2 and "not allowed" in r.stderr, (argv, r.stderr[-500:])
        assert not (tmp_path / "IMPORTED").exists(), argv
    r = run_cli("train", "--config", "cfg.yaml", "--allow-module", "marker_nets", "--out", "c2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "IMPORTED").exists()  # allowed by name on the command line: imported


def test_init_of_another_width_is_refused_though_batch_counters_and_the_bias_match(tmp_path):
    """A checkpoint of another width matches nothing but BatchNorm's num_batches_tracked and the classifier's bias:
    refused in one line instead of training from scratch under an --init that "loaded"."""
    from slimlab.config import TrainConfig
    from slimlab.errors import SlimlabError
    from slimlab.models import create_model
    from slimlab.tasks.common import build_model

    torch.save(create_model("convnet", 10, width=8).state_dict(), tmp_path / "narrow.pth")
    torch.save(create_model("convnet", 10, width=16).state_dict(), tmp_path / "same.pth")
    cfg = TrainConfig(model="convnet", model_kwargs={"width": 16}, init=str(tmp_path / "narrow.pth"))
    with pytest.raises(SlimlabError, match="none of convnet's weights outside the classifier matches"):
        build_model(cfg, 10)
    cfg.init = str(tmp_path / "same.pth")
    _, meta = build_model(cfg, 10)
    assert meta["init"]["tensors_copied"] == meta["init"]["tensors_total"]


OWN = '''
import torch
import torch.nn as nn


class DropPathNet(nn.Module):
    """Stochastic-depth rates as Python numbers: a constructor that cannot run on the meta device."""
    def __init__(self, num_classes=10, width=8, block="basic", drop_path=0.1):
        super().__init__()
        self.rates = torch.linspace(0, drop_path, 2).tolist()
        self.block = block
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.body(x)


def conv_head():
    """No num_classes argument, and a conv classifier of 100 outputs (no linear layer to replace)."""
    return nn.Sequential(nn.Conv2d(3, 100, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
'''


def test_own_constructors_with_their_own_arguments_train_and_reload_and_a_wrong_head_is_one_line(tmp_path):
    """A module: constructor's arguments are its own (slimlab's 'block: [1, 16]' range is not applied to them);
    one that cannot run on the meta device reloads for evaluate; 100 outputs on 10 classes are refused."""
    (tmp_path / "own_nets.py").write_text(OWN)
    r = run_cli("train", "--model", "module:own_nets:DropPathNet", "--model-kwargs", "{block: bottleneck, width: 8}",
                "--data", "digits", "--epochs", "1", "--train-subset", "100", "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", "run/best.pt", "--allow-module", "own_nets", "--test-subset", "50", cwd=tmp_path)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    r = run_cli("train", "--model", "module:own_nets:conv_head", "--data", "digits", "--epochs", "1",
                "--train-subset", "100", "--out", "head", cwd=tmp_path)
    assert r.returncode == 2 and "outputs 100 scores per image but the data has 10 classes" in r.stderr, r.stderr
