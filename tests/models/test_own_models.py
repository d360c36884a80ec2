"""Models from anywhere: timm:NAME, module:pkg.mod:callable (only when allowed), plain weight files, pruned
models of any class saved as safetensors without code."""

import sys

import pytest
import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.models import create_model
from slimlab.models.io import (
    load_pruned,
    match_report,
    plain_state_dict,
    read_safetensors,
    resize_to_state_dict,
    save_pruned,
    summarize_match,
)
from slimlab.models.registry import _ALLOWED, ALLOW_ENV, allow_module
from slimlab.profile import count_params


def test_timm_models_by_name_without_download():
    timm = pytest.importorskip("timm")
    m = create_model("timm:resnet18", 10)
    assert count_params(m) == count_params(timm.create_model("resnet18", num_classes=10))
    assert m.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(SlimlabError, match="unknown timm model"):
        create_model("timm:resnet_does_not_exist")


def test_model_arguments_cannot_replace_the_named_model():
    with pytest.raises(SlimlabError, match="cannot be built"):
        create_model("tv:resnet18", 10, tv_name="vgg11")
    with pytest.raises(SlimlabError, match="cannot be built"):
        create_model("timm:resnet18", 10, timm_name="vgg11")


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's module of constructors beside the working directory, importable by a unique name."""
    name = f"user_nets_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(
        "import torch.nn as nn\n"
        "def tiny(num_classes=10, width=8):\n"
        "    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),\n"
        "                         nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))\n"
        "def no_classes():\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 1000))\n"
        "RAN = True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    yield name
    _ALLOWED.discard(name)
    sys.modules.pop(name, None)


def test_a_user_module_is_refused_until_allowed_and_never_imported_before(user_module):
    with pytest.raises(SlimlabError, match=f"--allow-module {user_module}"):
        create_model(f"module:{user_module}:tiny", 5)
    assert user_module not in sys.modules  # refused before any of its code ran
    allow_module(user_module)
    m = create_model(f"module:{user_module}:tiny", 5, width=4)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 5) and m[0].out_channels == 4
    # a constructor without num_classes gets its head replaced when the size differs
    assert create_model(f"module:{user_module}:no_classes", 3)(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_the_environment_allows_a_module(user_module, monkeypatch):
    monkeypatch.setenv(ALLOW_ENV, f"other, {user_module}")
    assert create_model(f"module:{user_module}:tiny", 2)(torch.randn(1, 3, 8, 8)).shape == (1, 2)


def test_module_specs_are_checked(user_module):
    allow_module(user_module)
    for spec, msg in ((f"module:{user_module}", "not module:pkg.mod:callable"),
                      ("module:os;rm:x", "not module:pkg.mod:callable"),
                      (f"module:{user_module}:nothere", "has no 'nothere'"),
                      (f"module:{user_module}:RAN", "not callable")):
        with pytest.raises(SlimlabError, match=msg):
            create_model(spec, 2)


def test_plain_state_dicts_are_unwrapped():
    sd = {"a.weight": torch.ones(2)}
    assert plain_state_dict({"state_dict": sd, "epoch": 3}, "f") == sd
    ddp = plain_state_dict({"model": {"module.a.weight": torch.ones(2)}}, "f")
    assert list(ddp) == ["a.weight"] and torch.equal(ddp["a.weight"], sd["a.weight"])
    with pytest.raises(SlimlabError, match="no state dict"):
        plain_state_dict([1, 2], "f")
    with pytest.raises(SlimlabError, match="no tensors"):
        plain_state_dict({"x": 1}, "f")


def test_match_report_names_what_was_skipped_and_why():
    src = create_model("convnet", 10, width=8)
    dst = create_model("convnet", 4, width=8)
    sd = {**src.state_dict(), "extra.weight": torch.zeros(1)}
    rep = match_report(dst, sd, skip_head=False)
    head = [k for k in dst.state_dict() if dst.state_dict()[k].shape != src.state_dict()[k].shape]
    assert head and all(any(r.startswith(k + " ") for r in rep["shape_mismatch"]) for k in head)
    assert rep["not_in_model"] == ["extra.weight"] and rep["not_in_file"] == []
    assert len(rep["copied"]) == len(dst.state_dict()) - len(head)
    line = summarize_match(rep)
    assert f"{len(rep['copied'])} tensors copied" in line and "not in the model (first: extra.weight)" in line


def test_resize_handles_norms_beyond_batchnorm():
    class Net(nn.Module):
        def __init__(self, c=8):
            super().__init__()
            self.conv = nn.Conv2d(3, c, 3, padding=1)
            self.gn = nn.GroupNorm(1, c)
            self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
            self.ln = nn.LayerNorm(c)
            self.fc = nn.Linear(c, 2)

        def forward(self, x):
            x = self.dw(self.gn(self.conv(x))).mean((2, 3))
            return self.fc(self.ln(x))

    small, big = Net(4), Net(8)
    resize_to_state_dict(big, small.state_dict())
    big.load_state_dict(small.state_dict())
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(big(x), small(x)) and big.dw.groups == 4 and big.ln.normalized_shape == (4,)


def test_save_pruned_and_load_back_by_name_or_into_the_users_class(tmp_path):
    from slimlab.prune import prune_module

    model = create_model("resnet20", 10).eval()
    x = torch.randn(40, 3, 32, 32)
    prune_module(model, [x], method="weight_sum", keep_ratio=0.5, recalibrate=False)
    path = save_pruned(model, tmp_path / "r20.safetensors", model_name="resnet20")
    sd, meta = read_safetensors(path)
    assert meta["format"] == "slimlab-pruned-1" and sd["layer1.0.conv1.weight"].shape[0] == 8
    by_name = load_pruned(path)
    into = load_pruned(path, create_model("resnet20", 10))
    assert torch.equal(by_name(x), model(x)) and torch.equal(into(x), model(x))
    with pytest.raises(SlimlabError, match="its classifier has 10 outputs, the model given has 100"):
        load_pruned(path, create_model("resnet20", 100))  # was resized to 10 classes without a word
    (tmp_path / "not.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(SlimlabError, match="cannot read"):
        load_pruned(tmp_path / "not.safetensors")
    with pytest.raises(SlimlabError, match=".safetensors"):
        save_pruned(model, tmp_path / "r20.pt")
    (tmp_path / "d.safetensors").mkdir()
    with pytest.raises(SlimlabError, match="is a directory: give save_pruned a file name"):
        save_pruned(model, tmp_path / "d.safetensors", model_name="resnet20")
    conv_head = nn.Sequential(nn.Conv2d(3, 10, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    with pytest.raises(SlimlabError, match="pass num_classes="):  # was saved as num_classes 0, unloadable
        save_pruned(conv_head, tmp_path / "c.safetensors", model_name="module:m:f")
    save_pruned(conv_head, tmp_path / "c.safetensors", model_name="module:m:f", num_classes=10)
    assert read_safetensors(tmp_path / "c.safetensors")[1]["num_classes"] == "10"


def test_save_pruned_takes_num_classes_in_model_kwargs_and_unwraps_data_parallel(tmp_path):
    """Found by a user-scenario review: model_kwargs={"num_classes": 10} was stored beside num_classes and the
    reload crashed (create_model got it twice); a model pruned inside nn.DataParallel was saved with "module."
    keys that its own class could not load."""
    from slimlab.prune import prune_module

    x = torch.randn(16, 3, 32, 32)
    model = nn.DataParallel(create_model("resnet20", 10).eval())
    prune_module(model, [x], method="weight_sum", keep_ratio=0.5, recalibrate=False)
    path = save_pruned(model, tmp_path / "dp.safetensors", model_name="resnet20", model_kwargs={"num_classes": 10})
    sd, meta = read_safetensors(path)
    assert "layer1.0.conv1.weight" in sd and meta["num_classes"] == "10" and meta["model_kwargs"] == "{}"
    model.eval()  # (a DataParallel wrapper is built in training mode, and prune_module keeps the mode it was given)
    assert torch.equal(load_pruned(path)(x), model(x)) and torch.equal(load_pruned(path, create_model("resnet20"))(x),
                                                                       model(x))
    with pytest.raises(SlimlabError, match="num_classes=100 but model_kwargs says 10"):
        save_pruned(model, tmp_path / "x.safetensors", model_name="resnet20", model_kwargs={"num_classes": 10},
                    num_classes=100)


def test_load_pruned_gives_modules_that_read_their_version_what_they_need(tmp_path):
    """torchvision's MNASNet reads its module version while loading, which safetensors does not store."""
    import torchvision

    model = torchvision.models.mnasnet0_5(num_classes=10).eval()
    save_pruned(model, tmp_path / "m.safetensors", model_name="tv:mnasnet0_5")
    back = load_pruned(tmp_path / "m.safetensors")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))
