"""slimlab as a library: api.train on your own nn.Module and your own (image, label) data sets."""

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from slimlab import api
from slimlab.config import TrainConfig
from slimlab.data import from_datasets
from slimlab.errors import SlimlabError


def _pairs(n: int, seed: int):
    g = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = i % 2
        arr = (g.random((16, 16, 3)) * 60 + 150 * y).astype(np.uint8)  # class 1 is bright
        out.append((Image.fromarray(arr), y))
    return out


def test_from_datasets_takes_pil_arrays_and_float_tensors():
    pil = _pairs(4, 0)
    ds = from_datasets(pil, [(torch.rand(3, 16, 16), 1), (np.zeros((16, 16), np.uint8), 0)], classes=["dark", "bright"])
    assert ds.train.images.dtype == torch.uint8 and ds.train.images.shape == (4, 3, 16, 16)
    assert torch.equal(ds.train.images[0].permute(1, 2, 0), torch.from_numpy(np.array(pil[0][0])))
    assert ds.classes == ["dark", "bright"] and ds.test.targets.tolist() == [1, 0]
    with pytest.raises(SlimlabError, match="differ in size"):
        from_datasets([(torch.rand(3, 8, 8), 0), (torch.rand(3, 9, 9), 1)], pil)
    with pytest.raises(SlimlabError, match="non-finite"):
        from_datasets([(torch.full((3, 16, 16), float("nan")), 0)], pil)


def test_api_train_on_a_users_module_and_data(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 2))
    before = net[0].weight.detach().clone()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, val_fraction=0.0, out=str(tmp_path / "run"), progress="none")
    s = api.train(cfg,
                  model=net, data=(_pairs(96, 0), _pairs(32, 1)))
    assert not torch.equal(before, net[0].weight)  # trained in place
    assert s["test_acc"] >= 0.9 and s["train_images"] == 96
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ck["model_name"] == "custom:Sequential" or ck["model_name"].endswith(":Sequential")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["num_classes"] == 2


def test_api_train_leaves_the_callers_config_and_threads_as_they_were(tmp_path):
    import dataclasses

    cfg = TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, epochs=1, train_subset=60,
                      image_size=16, threads=1, overwrite=True, out=str(tmp_path / "r"), progress="none",
                      loss="pencil", loss_kwargs={"compat": "official"})
    given, was = dataclasses.asdict(cfg), torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        api.train(cfg)
        assert torch.get_num_threads() == 2  # the run used 1, the caller's setting is back
    finally:
        torch.set_num_threads(was)
    assert dataclasses.asdict(cfg) == given  # overwrite, loss_kwargs (PENCIL adds lr there) untouched
    api.train(cfg)  # the same config again: overwrite still says so


def test_a_users_object_built_with_its_own_arguments_reloads_by_its_class(tmp_path, monkeypatch):
    """api.train(model=MyNet(width=8)) records module:pkg:MyNet with no arguments; loading rebuilds MyNet() (width
    16) and gives its layers the stored shapes, so the checkpoint predicts as the trained object did."""
    import sys

    from slimlab.engine import load_checkpoint
    from slimlab.models.io import model_from_checkpoint
    from slimlab.models.registry import allow_module

    (tmp_path / "widthnets.py").write_text(
        "import torch.nn as nn\n"
        "class MyNet(nn.Sequential):\n"
        "    def __init__(self, width=16, num_classes=2):\n"
        "        super().__init__(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("widthnets", None)
    import widthnets

    net = widthnets.MyNet(width=8)
    cfg = TrainConfig(epochs=1, batch_size=16, val_fraction=0.0, out=str(tmp_path / "run"), progress="none")
    api.train(cfg, model=net, data=(_pairs(32, 0), _pairs(16, 1)))
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["model_name"] == "module:widthnets:MyNet"
    allow_module("widthnets")
    again = model_from_checkpoint(ck).eval()
    x = torch.randn(4, 3, 16, 16)
    assert again[0].out_channels == 8 and torch.allclose(again(x), net.eval()(x), atol=1e-6)


def test_a_one_channel_model_is_told_about_channels_not_image_size():
    from slimlab.tasks.common import macs_or_refuse

    with pytest.raises(SlimlabError, match="does not take 3-channel images"):
        macs_or_refuse(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()), "mine", 12)
    with pytest.raises(SlimlabError, match="cannot run on 4x4 images"):
        macs_or_refuse(nn.Sequential(nn.Conv2d(3, 4, 5), nn.Flatten()), "mine", 4)


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def test_a_run_on_your_own_model_and_data_resumes_bit_exactly_when_given_them_again(tmp_path):
    data = (_pairs(64, 0), _pairs(16, 1))

    def tiny():
        torch.manual_seed(1)
        return _Tiny()

    common = dict(epochs=3, batch_size=16, lr=0.05, val_fraction=0.0, progress="none")
    api.train(TrainConfig(stop_after=1, out=str(tmp_path / "cut"), **common), model=tiny(), data=data)
    for kw, match in [({}, "data given from Python"), ({"model": nn.Sequential(), "data": data}, "of its class"),
                      ({"model": _Tiny(), "data": (data[0][:32], data[1])}, "other data")]:
        with pytest.raises(SlimlabError, match=match):
            api.resume(tmp_path / "cut", **kw)
    torch.manual_seed(5)  # the fresh instance's own weights are replaced by last.pt's
    resumed, straight = _Tiny(), tiny()
    s = api.resume(tmp_path / "cut", model=resumed, data=data)
    api.train(TrainConfig(out=str(tmp_path / "straight"), **common), model=straight, data=data)
    assert s["epochs"] == 3
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_run_on_a_class_that_cannot_be_imported_needs_the_model_given_again(tmp_path):
    class Local(_Tiny):  # a class defined in a function is recorded as custom:Local
        pass

    cfg = TrainConfig(epochs=2, stop_after=1, batch_size=16, val_fraction=0.0, out=str(tmp_path / "r"), progress="none")
    api.train(cfg, model=Local(), data=(_pairs(32, 0), _pairs(8, 1)))
    with pytest.raises(SlimlabError, match=r"model given from Python \(custom:.*Local\)"):
        api.resume(tmp_path / "r")
    assert api.resume(tmp_path / "r", model=Local(), data=(_pairs(32, 0), _pairs(8, 1)))["epochs"] == 2


def test_a_run_on_named_data_is_resumed_without_data(tmp_path):
    cfg = TrainConfig(data="digits", model="convnet", model_kwargs={"width": 4}, epochs=2, stop_after=1,
                      train_subset=40, image_size=16, out=str(tmp_path / "r"), progress="none")
    api.train(cfg)
    with pytest.raises(SlimlabError, match="resume it without data"):
        api.resume(tmp_path / "r", data=(_pairs(8, 0), _pairs(4, 1)))


def test_from_datasets_decides_the_value_range_once_and_refuses_what_it_would_corrupt():
    dark = torch.full((3, 16, 16), 1.0)  # a float image of 0-255 values whose largest is 1 (a dark image)
    ds = from_datasets([(dark, 0), (torch.full((3, 16, 16), 200.0), 1)], [(dark, 0)])
    assert ds.train.images[0].max() == 1 and ds.train.images[1].max() == 200  # not multiplied by 255
    assert ds.pad == 2 and ds.flip  # an eighth of the size, as CIFAR's 4 at 32 px
    assert from_datasets([(torch.rand(3, 64, 64), 0)], [(torch.rand(3, 64, 64), 0)], flip=False).pad == 8
    normalised = [(torch.randn(3, 16, 16), i % 2) for i in range(4)]
    with pytest.raises(SlimlabError, match="negative values.*un-normalised"):
        from_datasets(normalised, _pairs(2, 0))
    with pytest.raises(SlimlabError, match="values up to 4095.*8-bit"):
        from_datasets([(np.full((16, 16), 4095, np.uint16), 0)], _pairs(2, 0))
    with pytest.raises(SlimlabError, match="train item 1: label -1"):
        from_datasets([(dark, 0), (dark, -1)], _pairs(2, 0))


def test_a_model_returning_a_tuple_is_one_line_before_training(tmp_path):
    class TwoHeads(_Tiny):
        def forward(self, x):
            out = super().forward(x)
            return out, out

    cfg = TrainConfig(epochs=1, batch_size=16, val_fraction=0.0, out=str(tmp_path / "r"), progress="none")
    with pytest.raises(SlimlabError, match="returns a tuple, not one tensor of class scores"):
        api.train(cfg, model=TwoHeads(), data=(_pairs(32, 0), _pairs(8, 1)))
