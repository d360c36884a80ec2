"""A checkpoint from a stranger: every malformed field is one line, nothing is downloaded, nothing huge
is allocated before the metadata is checked."""

from __future__ import annotations

import pytest
import torch

from slimlab.cli.main import main
from slimlab.engine import load_checkpoint
from slimlab.engine.checkpoint import FORMAT
from slimlab.errors import SlimlabError
from slimlab.models import create_model
from slimlab.models.io import model_from_checkpoint


def _ckpt(**over) -> dict:
    model = create_model("convnet", 10, width=8)
    ck = {"format": FORMAT, "model_name": "convnet", "model_kwargs": {"width": 8}, "num_classes": 10,
          "data": {"image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3}, "epoch": 1,
          "state_dict": model.state_dict()}
    ck.update(over)
    return {k: v for k, v in ck.items() if v is not None}


@pytest.mark.parametrize("over,needle", [
    ({"state_dict": None}, "no 'state_dict'"),
    ({"state_dict": {"w": "not a tensor"}}, "is not a named tensor"),
    ({"data": {"image_size": 100000}}, "data.image_size = 100000 is not an image size"),
    ({"num_classes": 0}, "'num_classes' = 0 is out of range"),
    ({"num_classes": "ten"}, "'num_classes' must be int"),
    ({"model_kwargs": [1, 2]}, "'model_kwargs' must be dict"),
    ({"epoch": -3}, "'epoch' = -3 is out of range"),
])
def test_malformed_metadata_is_refused_at_load(tmp_path, over, needle):
    torch.save(_ckpt(**over), tmp_path / "x.pt")
    with pytest.raises(SlimlabError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(tmp_path / "x.pt")


@pytest.mark.parametrize("over,needle", [
    ({"model_name": "resnet9000"}, "unknown model 'resnet9000'"),
    ({"model_kwargs": {"width": 0}}, "'width' must be a number in"),
    ({"model_kwargs": {"width": 8, "bogus": 1}}, "does not take argument"),
    ({"model_kwargs": {"width": 4096}}, "describe"),  # a huge model for a tiny state dict: refused before building
])
def test_bad_model_metadata_is_one_line(tmp_path, over, needle):
    torch.save(_ckpt(**over), tmp_path / "x.pt")
    ck = load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(SlimlabError, match=needle):
        model_from_checkpoint(ck)


def test_checkpoint_never_downloads(tmp_path, monkeypatch):
    """``tv:NAME`` with ``pretrained: true`` in a checkpoint: the weights come from the file, never the network."""
    import torchvision

    calls = []
    real = torchvision.models.get_model

    def spy(name, **kw):
        calls.append(kw.get("weights"))
        return real(name, **kw)

    monkeypatch.setattr(torchvision.models, "get_model", spy)
    m = create_model("tv:squeezenet1_1", 10)
    torch.save(_ckpt(model_name="tv:squeezenet1_1", model_kwargs={"pretrained": True}, state_dict=m.state_dict()),
               tmp_path / "tv.pt")
    got = model_from_checkpoint(load_checkpoint(tmp_path / "tv.pt"))
    assert calls and all(w is None for w in calls)
    assert torch.equal(got.state_dict()["features.0.weight"], m.state_dict()["features.0.weight"])


def test_export_of_a_malformed_checkpoint_is_one_line(tmp_path, capsys):
    torch.save(_ckpt(data={"image_size": 100000}), tmp_path / "x.pt")
    assert main(["export", str(tmp_path / "x.pt"), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an image size" in err[0]


def test_a_checkpoint_with_compressed_entries_is_refused_before_torch_inflates_it(tmp_path):
    """torch.save stores its zip entries; a deflated one could inflate a small file into gigabytes (a zip bomb)."""
    import zipfile

    good = tmp_path / "good.pt"
    torch.save(_ckpt(), good)
    assert load_checkpoint(good)["model_name"] == "convnet"  # torch's own files pass
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    with pytest.raises(SlimlabError, match="is not a PyTorch checkpoint"):
        load_checkpoint(bomb)


def test_a_checkpoint_cannot_make_timm_read_another_file(tmp_path, monkeypatch):
    """timm's ``checkpoint_path`` (or a pretrained-config overlay) in a checkpoint's model arguments would load
    weights from any path the file names: they are dropped, as download requests are."""
    timm = pytest.importorskip("timm")
    seen = []
    real = timm.create_model
    monkeypatch.setattr(timm, "create_model", lambda name, **kw: seen.append(kw) or real(name, **kw))
    m = create_model("timm:resnet18", 10)
    torch.save(_ckpt(model_name="timm:resnet18", model_kwargs={"checkpoint_path": str(tmp_path / "elsewhere.pth"),
                                                                "pretrained_cfg_overlay": {"file": "x"}},
                     state_dict=m.state_dict()), tmp_path / "t.pt")
    model_from_checkpoint(load_checkpoint(tmp_path / "t.pt"))
    assert seen and not any({"checkpoint_path", "pretrained_cfg_overlay"} & set(kw) for kw in seen)
