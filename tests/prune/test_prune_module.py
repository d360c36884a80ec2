"""The library entry point: prune any nn.Module from a plain DataLoader, save it without code, reload it in a
fresh process; round_to, ignored layers and the BatchNorm re-estimation checked against their definitions."""

import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.prune import prune_module, recalibrate_bn
from slimlab.prune.module import images_from
from slimlab.prune.pruner import keep_count

NET = '''
import torch.nn as nn
class UserNet(nn.Module):
    """A user's own class: a plain chain and a branch that is summed."""
    def __init__(self, classes=4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(24, 40, 3, padding=1), nn.BatchNorm2d(40), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(40, 24, 3, padding=1), nn.BatchNorm2d(24))
        self.head = nn.Linear(24, classes)
    def forward(self, x):
        x = self.stem(x)
        x = (x + self.b(self.a(x))).relu()
        return self.head(x.mean((2, 3)))
'''


@pytest.fixture
def user_net(tmp_path, monkeypatch):
    (tmp_path / "usernet_mod.py").write_text(NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usernet_mod", None)
    import usernet_mod

    yield usernet_mod
    sys.modules.pop("usernet_mod", None)


def test_a_users_module_pruned_from_a_dataloader_saved_and_reloaded_in_a_fresh_process(user_net, tmp_path):
    from slimlab.models.io import save_pruned

    torch.manual_seed(0)
    model = user_net.UserNet().eval()
    ds = torch.utils.data.TensorDataset(torch.randn(96, 3, 16, 16), torch.randint(0, 4, (96,)))
    loader = torch.utils.data.DataLoader(ds, batch_size=32)
    pruned, rep = prune_module(model, loader, method="thinet", keep_ratio=0.5)
    assert pruned is model and isinstance(pruned, user_net.UserNet)
    assert rep.channels == {"a.0": [40, 20]} and model.a[0].out_channels == 20 and model.b[0].in_channels == 20
    assert rep.macs_after < rep.macs_before and rep.calibration_images == 96 and rep.bn_layers_recalibrated == 3
    x = torch.randn(5, 3, 16, 16)
    torch.save(x, tmp_path / "x.pt")
    torch.save(model(x).detach(), tmp_path / "y.pt")
    save_pruned(model, tmp_path / "user.safetensors")
    code = (f"import sys, torch; sys.path.insert(0, {str(tmp_path)!r}); import usernet_mod\n"
            "from slimlab.api import load_pruned\n"
            f"m = load_pruned({str(tmp_path / 'user.safetensors')!r}, usernet_mod.UserNet())\n"
            f"x, y = torch.load({str(tmp_path / 'x.pt')!r}), torch.load({str(tmp_path / 'y.pt')!r})\n"
            "assert m.a[0].out_channels == 20\n"
            "print('max diff', float((m(x) - y).abs().max()))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split()[-1]) == 0.0


def test_keep_count_rounds_to_multiples_by_hand():
    assert keep_count(64, 0.6) == 38
    assert keep_count(64, 0.6, round_to=8) == 40  # 38 -> nearest multiple of 8
    assert keep_count(64, 0.55, round_to=8) == 32  # 35 -> 32
    assert keep_count(64, 0.01, round_to=8) == 8  # at least one multiple
    assert keep_count(12, 0.5, round_to=16) == 12  # never more than the layer has


def test_round_to_ignored_layers_and_prune_ratio_on_a_timm_model():
    pytest.importorskip("timm")
    from slimlab.models import create_model

    model = create_model("timm:resnet18", 10).eval()
    x = torch.randn(16, 3, 32, 32)
    layer4 = [m.out_channels for m in model.layer4.modules() if isinstance(m, nn.Conv2d)]
    _, rep = prune_module(model, [x], method="weight_sum", prune_ratio=0.4, round_to=8,
                          ignored_layers=[model.layer4])
    assert rep.keep_ratio == pytest.approx(0.6)
    assert rep.channels and all(k % 8 == 0 for _, k in rep.channels.values())
    assert [k for _, k in rep.channels.values()] == [40, 40, 80, 80, 152, 152]  # 38/77/153 rounded
    assert not any(n.startswith("layer4") for n in rep.channels)
    assert [m.out_channels for m in model.layer4.modules() if isinstance(m, nn.Conv2d)] == layer4
    with pytest.raises(SlimlabError, match="not both"):
        prune_module(model, [x], keep_ratio=0.5, prune_ratio=0.5)
    with pytest.raises(SlimlabError, match="no such module"):
        prune_module(model, [x], ignored_layers=["layer9"])


def test_target_macs_is_met_with_rounding():
    from slimlab.models import create_model

    model = create_model("resnet20", 10).eval()
    _, rep = prune_module(model, [torch.randn(20, 3, 32, 32)], method="random", target_macs=0.6, round_to=4)
    assert rep.macs_after <= 0.6 * rep.macs_before and all(k % 4 == 0 for _, k in rep.channels.values())


def test_recalibrated_bn_statistics_are_the_batch_statistics():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Dropout(0.5), nn.Conv2d(5, 2, 1),
                        nn.BatchNorm2d(2))
    net[1].running_mean.fill_(7.0)
    net.eval()
    x = torch.randn(64, 3, 8, 8)
    assert recalibrate_bn(net, [x[:32], x[32:]]) == 2
    h = net[0](x)
    # equal batches: the average of the two batches' means and unbiased variances, as PyTorch's momentum=None
    v = torch.stack([h[:32].var(dim=(0, 2, 3)), h[32:].var(dim=(0, 2, 3))]).mean(0)
    assert torch.allclose(net[1].running_mean, h.mean(dim=(0, 2, 3)), atol=1e-5)
    assert torch.allclose(net[1].running_var, v, atol=1e-4)
    assert not net.training and net[1].momentum == 0.1  # the mode and the momentum are restored
    mean = net[1].running_mean.clone()
    labels = torch.zeros(32, dtype=torch.long)
    assert recalibrate_bn(net, [(x[:32], labels), {"image": x[32:], "label": labels}]) == 2  # prune_module's forms
    assert torch.allclose(net[1].running_mean, mean, atol=1e-6)
    with pytest.raises(ValueError, match="not images"):
        recalibrate_bn(net, [x[:32], "not a batch"])
    assert torch.equal(net[1].running_mean, mean) and int(net[1].num_batches_tracked) == 2  # kept on a failure


def test_the_command_lines_option_names_work_and_unknown_ones_are_one_line():
    from slimlab.models import create_model

    x = [torch.randn(8, 3, 16, 16)]
    a, ra = prune_module(create_model("resnet20", 10).eval(), x, method="thinet", keep_ratio=0.5, seed=1,
                         ignored_layers=["layer1.0.conv1"], variant="tpami")
    b, rb = prune_module(create_model("resnet20", 10).eval(), x, method="thinet", keep_ratio=0.5, seed=1,
                         ignore_layers=["layer1.0.conv1"], thinet_variant="tpami")
    assert ra.channels == rb.channels and "layer1.0.conv1" not in ra.channels
    with pytest.raises(SlimlabError, match="unknown option 'varaint'"):
        prune_module(create_model("resnet20", 10), x, keep_ratio=0.5, varaint="tpami")
    with pytest.raises(SlimlabError, match="not both"):
        prune_module(create_model("resnet20", 10), x, keep_ratio=0.5, ignored_layers=["fc"], ignore_layers=["fc"])


def test_a_bf16_model_is_refused_in_one_line_and_an_old_optimizer_misses_the_new_tensors():
    from slimlab.models import create_model

    with pytest.raises(SlimlabError, match="needs a float32 model, this one is torch.bfloat16"):
        prune_module(create_model("resnet20", 10).to(torch.bfloat16), [torch.randn(4, 3, 16, 16)], keep_ratio=0.5)
    # what the docstring warns about: pruning swaps the parameters an optimizer built before still holds
    model = create_model("resnet20", 10)
    before = {id(p) for p in model.parameters()}
    prune_module(model, [torch.randn(8, 3, 16, 16)], method="weight_sum", keep_ratio=0.5)
    assert {id(p) for p in model.parameters()} - before  # new tensors: an old optimizer would not train them


def test_calibration_batches_in_every_usual_shape():
    x = torch.randn(10, 3, 8, 8)
    assert images_from([x], 4).shape == (4, 3, 8, 8)
    assert images_from([(x, torch.zeros(10))], 100).shape == (10, 3, 8, 8)
    assert images_from([{"image": x}, {"image": x}], 15).shape == (15, 3, 8, 8)
    assert images_from(x, 4).shape == (4, 3, 8, 8)  # one tensor: one batch (it once iterated over its images)
    with pytest.raises(SlimlabError, match="calibration data must yield batches.*got a batch of list"):
        images_from([[1, 2]], 4)
    with pytest.raises(SlimlabError, match="empty"):
        images_from([], 4)


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    pytest.importorskip("timm")
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Your own model", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 10
    monkeypatch.chdir(tmp_path)
    my_train_set = torch.utils.data.TensorDataset(torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,)))
    scope = {"my_train_set": my_train_set}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102  (our own README)
    model, report = scope["model"], scope["report"]
    assert report.macs_after <= 0.5 * report.macs_before
    assert all(k % 8 == 0 for _, k in report.channels.values())
    assert model.layer1[0].conv1.out_channels == report.channels["layer1.0.conv1"][1]
    assert (tmp_path / "r18-pruned.safetensors").is_file()


def test_a_library_prune_with_a_state_file_resumes_to_the_same_model(tmp_path):
    """Your own loop, killed mid-prune: the same call with the same state_file continues after the last layer."""
    import torchvision

    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(16, 3, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(2)]
    base = torchvision.models.resnet18(num_classes=10).eval()
    calls = []

    def tune(model):  # the user's fine-tuning between layers; dies on its third call the first time
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    def prune(state_file, between, calibration=batches):
        m = torchvision.models.resnet18(num_classes=10).eval()
        m.load_state_dict(base.state_dict())
        return prune_module(m, calibration, method="thinet", keep_ratio=0.5, layers=["layer1.0.conv1", "layer1.1.conv1",
                            "layer2.0.conv1", "layer2.1.conv1"], per_image=4, between_layers=between,
                            state_file=state_file, progress=lines.append)[0]

    lines: list[str] = []
    whole = prune(None, None)
    with pytest.raises(KeyboardInterrupt):
        prune(str(tmp_path / "state.pt"), tune)
    lines.clear()
    resumed = prune(str(tmp_path / "state.pt"), None)
    assert lines[0].startswith("resumed: 2 of 4 layers") and lines[-1].startswith("layer 4/4 layer2.1.conv1")
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert not (tmp_path / "state.pt").exists()  # finished: a later call starts afresh
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        prune(str(tmp_path / "state.pt"), tune)
    shuffled = [(x.flip(0), y.flip(0)) for x, y in batches]  # what a DataLoader with shuffle=True gives
    with pytest.raises(SlimlabError, match=r"other calibration images \(a DataLoader with shuffle=True.*: delete "
                                           r".*state.pt to prune every layer again$"):
        prune(str(tmp_path / "state.pt"), None, shuffled)
    with torch.no_grad():
        base.fc.bias += 1  # other weights: the progress file is not theirs
    with pytest.raises(SlimlabError, match="for a model with other weights"):
        prune(str(tmp_path / "state.pt"), None)


class _Cat(nn.Module):  # two convs concatenated into the next one (SqueezeNet's fire, GhostNet's ghost modules)
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3, padding=1)
        self.c, self.fc = nn.Conv2d(16, 8, 3, padding=1), nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.c(torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], 1)).mean((2, 3)))


class _Shuffle(nn.Module):  # 1x1 conv, a channel shuffle (ShuffleNet), 1x1 conv
    def __init__(self, groups: int = 1):
        super().__init__()
        self.a, self.c = nn.Conv2d(3, 16, 1), nn.Conv2d(16, 8, 1)
        self.d = nn.Conv2d(8, 8, 3, padding=1, groups=4 if groups > 1 else 1)

    def forward(self, x):
        y = self.a(x)
        n, c, h, w = y.shape
        return self.d(self.c(y.view(n, 4, c // 4, h, w).transpose(1, 2).reshape(n, c, h, w)))


class _Grouped(nn.Module):  # a dense conv read by a grouped (not depthwise) conv
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1, groups=4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


@pytest.mark.parametrize("net,layer", [(_Cat, "a"), (_Shuffle, "a"), (_Grouped, "a")])
def test_a_layer_not_read_one_to_one_by_the_next_conv_is_left_whole_or_refused_in_one_line(net, layer):
    """Before: ThiNet chose among both branches' columns for a concatenated layer (and kept the wrong count), a
    channel shuffle gave a silently wrong model with every criterion, and a grouped reader crashed mid-surgery
    leaving a broken model. Now such layers are not pruned by default, and naming one is a one-line error."""
    from slimlab.prune.graph import build_graph, find_prunable

    torch.manual_seed(0)
    m = net().eval()
    try:
        assert layer not in [p.name for p in find_prunable(m, build_graph(m, 16))]
    except SlimlabError as e:  # nothing else to prune: the one line says why, counted by reason
        assert "not read one to one by the next convolution" in str(e) and f"such as {layer}" in str(e)
    with pytest.raises(SlimlabError, match=rf"\(--layers\): {layer} cannot be pruned on its own: not read one to "
                                           "one by the next convolution"):
        find_prunable(m, build_graph(m, 16), [layer])
    x = torch.randn(2, 3, 16, 16)
    before = m(x)
    for method in ("thinet", "l1"):
        with pytest.raises(SlimlabError, match="cannot be pruned on its own|no prunable layer"):
            prune_module(m, [torch.randn(8, 3, 16, 16)], method=method, keep_ratio=0.5, layers=[layer])
        assert torch.equal(m(x), before)  # refused before any surgery: the model is untouched


def test_a_plain_chain_with_dead_channels_still_prunes_exactly():
    """The check lets through what is read one to one: conv, BN, ReLU, conv. With half of layer i's channels dead
    (zero weights and bias), ThiNet keeps the live half and the output does not change."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                      nn.Conv2d(8, 4, 1)).eval()
    with torch.no_grad():
        m[0].weight[4:] = 0
        m[0].bias[4:] = 0
    x = torch.randn(4, 3, 16, 16)
    before = m(x)
    report = prune_module(m, [torch.randn(64, 3, 16, 16)], method="thinet", keep_ratio=0.5, recalibrate=False,
                          layers=["0"])
    assert m[0].out_channels == 4 and torch.allclose(m(x), before, atol=1e-4), report


def test_a_state_file_is_never_deleted_unless_it_is_the_prunes_own(tmp_path):
    """mode='oneshot' with state_file deleted whatever the path held, unread (found by a review, 2026-12-04)."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    precious = tmp_path / "precious.pt"
    precious.write_text("my notes")
    with pytest.raises(SlimlabError, match="mode='oneshot' prunes every layer at once"):
        prune_module(net, torch.randn(8, 3, 16, 16), method="l1", keep_ratio=0.5, mode="oneshot",
                     state_file=str(precious))
    with pytest.raises(SlimlabError, match=r"not a slimlab pruning progress file \(left as it is\): give state_file"):
        prune_module(net, torch.randn(8, 3, 16, 16), method="l1", keep_ratio=0.5, state_file=str(precious))
    assert precious.read_text() == "my notes"


def test_depthwise_separable_only_models_prune_their_pointwise_convs():
    """timm's MobileNetV1 and LCNet are DepthwiseSeparableConv blocks only: the expansion-conv rule of inverted
    residuals left them nothing to prune (found by a review, 2026-12-04)."""
    timm = pytest.importorskip("timm")
    model = timm.create_model("lcnet_050", pretrained=False, num_classes=10).eval()
    x = torch.randn(4, 3, 32, 32)
    model, report = prune_module(model, torch.randn(16, 3, 32, 32), method="l1", keep_ratio=0.5)
    assert len(report.channels) == 14 and report.macs_after < 0.5 * report.macs_before
    with torch.no_grad():
        assert model(x).shape == (4, 10)


def test_thinet_samples_enough_positions_by_default_as_the_command_line_does(user_net):
    """prune_module's samples_per_weight defaulted to 0 (the CLI's to 10): with 2 calibration images ThiNet's
    least squares for 20 kept channels saw 20 samples, an under-determined fit. Now as on the command line it draws
    more positions per image (ceil(10 x 20 / 2) = 100); 0 still means per_image alone, and says so."""
    import warnings

    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the under-determined warning would fail here
        prune_module(user_net.UserNet().eval(), x, method="thinet", keep_ratio=0.5, per_image=10)
    with pytest.warns(UserWarning, match="20 samples for 20 kept channels, an under-determined least squares"):
        prune_module(user_net.UserNet().eval(), x, method="thinet", keep_ratio=0.5, per_image=10,
                     samples_per_weight=0)


def test_integer_calibration_images_are_refused_before_any_change(user_net):
    """Raw 0-255 uint8 pixels re-estimated every BatchNorm on the wrong scale: a review's trained model went from
    87.5% to 9.4% without a word. A dict batch without an image key names the keys it had."""
    m = user_net.UserNet().eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = (torch.rand(8, 3, 16, 16) * 255).to(torch.uint8)
    with pytest.raises(SlimlabError, match="calibration images are uint8: give them as the model sees them"):
        prune_module(m, [(x, torch.zeros(8, dtype=torch.long))], keep_ratio=0.5)
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    with pytest.raises(SlimlabError, match="got a batch of dict with keys img, target"):
        prune_module(m, [{"img": x.float(), "target": torch.zeros(8)}], keep_ratio=0.5)


def test_one_ignored_name_a_wrong_channel_count_and_a_prune_that_removes_nothing(user_net):
    """Found by a user-scenario review: ignored_layers="stem" was read as the names s, t, e, m; images of another
    channel count were a raw torch error; round_to larger than every layer pruned nothing and said 'keep 0.5'."""
    torch.manual_seed(0)
    x = torch.randn(8, 3, 16, 16)
    _, report = prune_module(user_net.UserNet().eval(), x, method="l1", keep_ratio=0.5, ignored_layers="stem.0")
    assert "stem.0" not in report.channels and report.channels
    with pytest.raises(SlimlabError, match=r"UserNet cannot run on the calibration images \(1 channels, 16x16\)"):
        prune_module(user_net.UserNet().eval(), torch.randn(8, 1, 16, 16), keep_ratio=0.5)
    with pytest.warns(UserWarning, match="prune_module removed no channel: every layer kept its width "
                                        r"\(round_to=128 on layers of 40\+ channels"):
        prune_module(user_net.UserNet().eval(), x, method="l1", keep_ratio=0.5, round_to=128)
