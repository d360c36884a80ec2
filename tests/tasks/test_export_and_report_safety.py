"""Export parity checks that fail on NaN, and reports that escape every name."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.export import export_onnx, export_torchscript


def _nan_model() -> nn.Module:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    with torch.no_grad():
        m[3].weight.fill_(float("nan"))
    return m


def test_onnx_check_fails_on_nan(tmp_path):
    """The issue's case 3: max(0.0, nan) is 0.0, so an all-NaN model was reported as matching within 0. A good
    file already there survives the failed export, and no temporary file is left."""
    (tmp_path / "m.onnx").write_bytes(b"the good model")
    with pytest.raises(SlimlabError, match="hold NaN or inf"):
        export_onnx(_nan_model(), tmp_path / "m.onnx", 8)
    assert (tmp_path / "m.onnx").read_bytes() == b"the good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_torchscript_check_fails_on_nan(tmp_path):
    with pytest.raises(SlimlabError, match="hold NaN or inf"):
        export_torchscript(_nan_model(), tmp_path / "m.ts.pt", 8)
    assert not (tmp_path / "m.ts.pt").exists()


def test_finite_model_still_exports(tmp_path):
    m = _nan_model()
    with torch.no_grad():
        m[3].weight.fill_(0.1)
    (tmp_path / ".m.onnx.1234.tmp").symlink_to(tmp_path / "elsewhere")  # a name the old temporary file followed
    assert export_onnx(m, tmp_path / "m.onnx", 8)["max_abs_diff"] < 1e-4
    assert not (tmp_path / "elsewhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.onnx.1234.tmp", "m.onnx"]


def test_onnx_check_is_relative_to_the_outputs_scale(tmp_path, monkeypatch):
    """float32 rounding grows with the logits: a randomly initialised timm EfficientNet-B0's reach ~230 and ONNX
    Runtime differs by ~1.6e-2 there (relative 7e-5), which an absolute 1e-4 refused. The check takes the largest
    output into account, and still refuses a real mismatch (here every output off by 1%)."""
    import slimlab.export as export

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(64, 10))
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(30)  # logits in the thousands
    with pytest.raises(SlimlabError, match=r"by 1\.\d+e-03 \(> 0\.0001 \+ 0 x"):  # what an absolute 1e-4 said
        export_onnx(m, tmp_path / "big.onnx", 16, rtol=0)
    assert 1e-4 < export_onnx(m, tmp_path / "big.onnx", 16)["max_abs_diff"] < 1e-2
    real = export._session

    class Off:  # ONNX Runtime's outputs, 1% too large
        def __init__(self, path):
            self.s = real(path)

        def run(self, names, feed):
            return [o * 1.01 for o in self.s.run(names, feed)]

    monkeypatch.setattr(export, "_session", Off)
    (tmp_path / "big.onnx").unlink()
    with pytest.raises(SlimlabError, match=r"differs from PyTorch by \d\.\d+e\+01 \(> 0\.0001 \+ 0\.0001 x the "
                                           r"largest output \d\.\d+e\+03\)"):
        export_onnx(m, tmp_path / "big.onnx", 16)
    assert not (tmp_path / "big.onnx").exists()


def test_export_overwrite_replaces_the_model_file_only(tmp_path, capsys):
    from slimlab.cli.main import main

    run = tmp_path / "r"
    assert main(["train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 4}", "--epochs", "1",
                 "--train-subset", "40", "--image-size", "16", "--progress", "none", "--out", str(run)]) == 0
    (tmp_path / "other.onnx").write_text("mine")
    (tmp_path / "other.onnx.json").write_text('{"my": "notes"}')
    assert main(["export", str(run), "--out", str(tmp_path / "other.onnx"), "--overwrite"]) == 0
    assert (tmp_path / "other.onnx.json").read_text() == '{"my": "notes"}'
    assert "other.onnx.json exists and was not written by slimlab export: left as it is" in capsys.readouterr().err


def test_report_escapes_run_names(tmp_path):
    from slimlab.tasks.report import build_report

    evil = tmp_path / "<img src=x onerror=alert(1)>"
    evil.mkdir()
    (evil / "summary.json").write_text(json.dumps({"model": "<b>m</b>", "test_acc": 0.5}))
    html = build_report([evil], tmp_path / "r.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>m</b>" not in html


def test_report_replaces_only_its_own_files(tmp_path):
    from slimlab.errors import SlimlabError
    from slimlab.tasks.report import build_report

    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"model": "m", "test_acc": 0.5}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 1.0, "train_acc": 0.4, "lr": 0.1}) + "\n")
    mine = tmp_path / "notes.md"
    mine.write_text("my notes")
    for fmt, name in (("md", "notes.md"), ("html", "notes.md")):
        with pytest.raises(SlimlabError, match="not a slimlab report"):
            build_report([run], tmp_path / name, fmt)
    assert mine.read_text() == "my notes"
    first = build_report([run], tmp_path / "r.md", "md")  # a new report; then the same again replaces it
    figures = sorted(p.name for p in tmp_path.glob("r-*.png"))
    assert figures  # the curves, beside the report
    assert build_report([run], first, "md") == first and sorted(p.name for p in tmp_path.glob("r-*.png")) == figures
    first.unlink()  # its figures stay: a new report named r.md would replace files it cannot know are its own
    with pytest.raises(SlimlabError, match="not this report's"):
        build_report([run], first, "md")
    html = build_report([run], tmp_path / "r.html")
    assert build_report([run], html) == html  # a slimlab HTML report is replaced


def test_scale_apply_and_profile_never_replace_a_users_own_file(tmp_path, capsys):
    """`scale apply --out DIR` writes DIR/model.yaml, `profile --runs` writes profile.json: a file of that name
    that slimlab did not write stays, with a one-line refusal; slimlab's own is replaced."""
    from slimlab.cli.main import main
    from slimlab.tasks.common import refuse_foreign_file
    from slimlab.tasks.profile import _profile_rows

    (tmp_path / "model.yaml").write_text("my: notes\n")
    argv = ["scale", "apply", "--base", "efficientnet_b0", "--phi", "1", "--out", str(tmp_path)]
    assert main(argv) == 2 and "was not written by slimlab scale apply" in capsys.readouterr().err
    assert (tmp_path / "model.yaml").read_text() == "my: notes\n"
    (tmp_path / "model.yaml").unlink()
    assert main(argv) == 0 and main(argv) == 0  # its own file: replaced
    (tmp_path / "profile.json").write_text('{"budget": 3}')
    with pytest.raises(SlimlabError, match="not written by slimlab profile"):
        refuse_foreign_file(tmp_path / "profile.json", _profile_rows, "profile")
    (tmp_path / "profile.json").write_text('{"runs/a": {"params": 1, "torch_ms": 0.5}}')
    refuse_foreign_file(tmp_path / "profile.json", _profile_rows, "profile")  # slimlab's: no error


def test_export_takes_the_models_channels_a_rectangle_and_gives_the_model_back_as_it_was(tmp_path):
    """Found by a user-scenario review: a 1-channel model failed (3 channels were always fed), (h, w) sizes were a
    TypeError, a tuple output an AttributeError, and the model came back in eval mode."""
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    m.train()
    assert export_onnx(m, tmp_path / "gray.onnx", (16, 24))["max_abs_diff"] < 1e-4
    assert export_torchscript(m, tmp_path / "gray.ts.pt", (16, 24))["max_abs_diff"] < 1e-4
    assert m.training and all(x.training for x in m.modules())

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x), x.mean()

    for export, name in ((export_onnx, "pair.onnx"), (export_torchscript, "pair.ts.pt")):
        with pytest.raises(SlimlabError, match="export needs a model whose forward returns one tensor .* returns a "
                                               "tuple"):
            export(Pair(), tmp_path / name, 16)
        assert not (tmp_path / name).exists()
