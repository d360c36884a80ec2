"""Issue 25's first cases: nothing slimlab did not write is overwritten, no checkpoint with NaN is written or
pruned, a checkpoint is never paired with another set of classes, nothing escapes runs/ or the zoo."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml

from conftest import run_cli
from slimlab import api
from slimlab.config import TrainConfig
from slimlab.engine.fit import checkpoint_payload
from slimlab.errors import SlimlabError


def _folder(root: Path, classes: tuple[str, ...]) -> Path:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 6), ("test", 3)):
        for ci, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                arr = (torch.rand(16, 16, 3, generator=g) * 60 + 60 * ci).to(torch.uint8).numpy()
                Image.fromarray(arr).save(root / split / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def abc_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("h2")
    data = _folder(tmp / "abc", ("a", "b", "c"))
    out = tmp / "run"
    api.train(TrainConfig(data=f"imagefolder:{data}", model="convnet", model_kwargs={"width": 4}, epochs=1,
                          batch_size=8, out=str(out), progress="none"))
    return out


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_export_never_replaces_a_file_slimlab_did_not_write(abc_run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    for fmt in ("onnx", "torchscript"):
        r = run_cli("export", str(abc_run), "--format", fmt, "--out", str(notes))
        assert r.returncode == 2 and "not written by slimlab export" in r.stderr and "Traceback" not in r.stderr
        assert notes.read_text() == "my notes"
    ours = tmp_path / "m.onnx"
    for _ in range(2):  # an export slimlab wrote may be written again
        r = run_cli("export", str(abc_run), "--out", str(ours))
        assert r.returncode == 0, r.stderr
    ts = tmp_path / "m.ts.pt"
    for _ in range(2):
        assert run_cli("export", str(abc_run), "--format", "torchscript", "--out", str(ts)).returncode == 0
    r = run_cli("export", str(abc_run), "--out", str(notes), "--overwrite")
    assert r.returncode == 0 and notes.read_bytes()[:1] != b"m"


def test_no_checkpoint_with_nan_is_written_or_pruned(abc_run, tmp_path):
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    with pytest.raises(SlimlabError, match="'weight' holds NaN"):
        checkpoint_payload(model, {})
    ck = torch.load(abc_run / "best.pt", weights_only=True)
    key = next(k for k in ck["state_dict"] if k.endswith("weight"))
    ck["state_dict"][key] = torch.full_like(ck["state_dict"][key], float("nan"))
    torch.save(ck, tmp_path / "nan.pt")
    out = tmp_path / "pruned"
    r = run_cli("prune", str(tmp_path / "nan.pt"), "--method", "weight_sum", "--ft-layer-epochs", "0", "--no-latency",
                "--out", str(out))
    assert r.returncode == 2 and "NaN or inf" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "best.pt").exists()


def test_prune_refuses_data_with_other_classes(abc_run, tmp_path):
    xyz = _folder(tmp_path / "xyz", ("x", "y", "z"))
    r = run_cli("prune", str(abc_run), "--data", f"imagefolder:{xyz}", "--method", "weight_sum",
                "--ft-layer-epochs", "0", "--no-latency", "--out", str(tmp_path / "p"))
    assert r.returncode == 2 and "trained on classes a, b, c" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "p" / "best.pt").exists()


def test_a_profile_step_never_writes_into_the_runs_it_reads(abc_run, tmp_path):
    before = _digest(abc_run / "summary.json")
    recipe = {"name": "prof", "steps": [{"name": "profile", "kind": "profile",
                                          "with": {"runs": [str(abc_run)], "iters": 2, "onnx": False}}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    r = run_cli("run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert _digest(abc_run / "summary.json") == before
    rows = json.loads((tmp_path / "out" / "profile" / "profile.json").read_text())
    assert list(rows.values())[0]["torch_ms"] > 0


def test_a_recipe_name_that_is_a_path_cannot_be_the_default_output(tmp_path):
    recipe = {"name": "../escaped", "steps": [{"name": "m", "kind": "models", "with": {}}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    (tmp_path / "cwd").mkdir()
    r = run_cli("run", str(tmp_path / "r.yaml"), cwd=tmp_path / "cwd")
    assert r.returncode == 2 and "not a plain name" in r.stderr
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "cwd" / "runs").exists()


@pytest.mark.parametrize("name", ["zoo:../../somewhere/x", "zoo:a/b", "zoo:..", "zoo:"])
def test_a_zoo_name_is_a_plain_name(name):
    from slimlab.zoo import resolve

    with pytest.raises(SlimlabError, match="plain name"):
        resolve(name)


# ---- tracebacks where one line is due ------------------------------------------------------------------------
def _main(argv, capsys):
    from slimlab.cli.main import main

    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_a_full_disk_is_one_line(abc_run, tmp_path, capsys, monkeypatch):
    import errno
    import os

    real = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: Full(real(fd, mode, *a, **k)))
    code, err = _main(["train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 4}", "--epochs", "1",
                       "--out", str(tmp_path / "t")], capsys)
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("text,msg", [
    ("a: " + "[" * 5000 + "]" * 5000, "nested more than"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, "
     "*b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n", "once its aliases"),
    ("name: r\nvars: [1, 2]\nsteps: [{name: a, kind: models}]\n", "'vars' must be a mapping"),
    ("name: r\nbudgets: {small: 3}\nsteps: [{name: a, kind: models}]\n", "'budgets' must map"),
])
def test_yaml_shapes_and_bombs_are_one_line_and_fast(tmp_path, capsys, text, msg):
    import time

    (tmp_path / "r.yaml").write_text(text)
    t0 = time.time()
    code, err = _main(["run", str(tmp_path / "r.yaml"), "--check"], capsys)
    assert code == 2 and msg in err and time.time() - t0 < 5


def test_a_key_given_twice_is_refused_but_a_merge_may_override(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("lr: 0.1\nepochs: 1\nlr: 0.5\n")  # PyYAML alone would train at 0.5, silently
    code, err = _main(["train", "--config", str(tmp_path / "c.yaml")], capsys)
    assert code == 2 and "'lr' is given twice (lines 1 and 3)" in err
    (tmp_path / "ok.yaml").write_text("epochs: 1\n")
    code, err = _main(["train", "--config", str(tmp_path / "ok.yaml"), "--set", "model_kwargs={width: 4, width: 8}"],
                      capsys)
    assert code == 2 and "'width' is given twice" in err
    from slimlab.cli.main import main

    with pytest.raises(SystemExit) as e:  # argparse's own exit; was a YAML traceback
        main(["report", "x", "--profiles", "[a"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "not a YAML list: '[a'" in err and "Traceback" not in err
    from slimlab.config import parse_yaml

    assert parse_yaml("b: &b {lr: 1, e: 2}\nr: {<<: *b, lr: 3}\n", "f")["r"] == {"lr": 3, "e": 2}


def test_a_config_that_is_not_utf8_is_one_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_bytes(b"epochs: 2\nmodel: r\xe9snet\n")
    code, err = _main(["train", "--config", str(tmp_path / "c.yaml")], capsys)
    assert code == 2 and "not UTF-8" in err


def test_resume_with_a_malformed_optimizer_state_is_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    api.train(TrainConfig(data="fake", model="convnet", model_kwargs={"width": 4}, epochs=2, stop_after=1,
                          batch_size=64, out=str(out), progress="none"))
    ck = torch.load(out / "last.pt", weights_only=True)
    wrong_shapes = {k: {"momentum_buffer": torch.zeros(2)} for k in ck["optimizer"]["state"]}
    for bad in ({}, {"state": {}, "param_groups": []}, {**ck["optimizer"], "state": wrong_shapes}):
        torch.save({**ck, "optimizer": bad}, out / "last.pt")
        code, err = _main(["train", "--resume", str(out)], capsys)
        assert code == 2 and "optimizer state" in err, err


def test_checkpoint_data_records_are_checked_where_read(abc_run, tmp_path, capsys):
    ck = torch.load(abc_run / "best.pt", weights_only=True)
    for data, msg in (({**ck["data"], "mean": ["a", "b", "c"]}, "data.mean"), ({**ck["data"], "classes": "abc"},
                                                                                "data.classes")):
        torch.save({**ck, "data": data}, tmp_path / "c.pt")
        code, err = _main(["evaluate", str(tmp_path / "c.pt")], capsys)
        assert code == 2 and msg in err
    torch.save({**ck, "data": None}, tmp_path / "n.pt")
    code, err = _main(["evaluate", str(tmp_path / "n.pt"), "--data", "fake"], capsys)
    assert code == 2 and "3 classes" in err  # pairing is still checked without a data record


def test_files_read_back_are_one_line(abc_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(abc_run, run)
    (run / "summary.json").write_text("[1, 2]")
    code, err = _main(["report", str(run), "--out", str(tmp_path / "r.html")], capsys)
    assert code == 2 and "expected a JSON object" in err
    (run / "summary.json").write_text(json.dumps({"test_acc": "high", "macs": [1], "model": "$x$"}))
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "train_loss": "x"}\n')
    code, err = _main(["report", str(run), "--format", "md", "--out", str(tmp_path / "r.md")], capsys)
    assert code == 0, err


def test_noise_flips_out_of_range_fail_before_any_file_is_written(tmp_path, capsys):
    out = tmp_path / "n"
    api.train(TrainConfig(data="fake", model="convnet", model_kwargs={"width": 4}, epochs=1, batch_size=64,
                          noise="symmetric:0.2", out=str(out), progress="none"))
    noise = json.loads((out / "noise.json").read_text())
    (out / "noise.json").write_text(json.dumps({**noise, "flipped": [0, 10**9]}))
    code, err = _main(["labels", str(out), "--folds", "2", "--cv-epochs", "1", "--grid", "0"], capsys)
    assert code == 2 and "flipped indices must be in" in err
    assert not (out / "label_issues.csv").exists()


def test_clear_messages_for_a_text_file_as_a_checkpoint_and_a_layer_that_cannot_be_pruned(abc_run, tmp_path,
                                                                                          capsys):
    (tmp_path / "notackpt.txt").write_text("hello")
    code, err = _main(["train", "--data", "fake", "--init", str(tmp_path / "notackpt.txt"), "--out",
                       str(tmp_path / "x")], capsys)
    assert code == 2 and "is not a PyTorch checkpoint" in err
    code, err = _main(["prune", str(abc_run), "--layers", "classifier", "--no-latency", "--out", str(tmp_path / "p")],
                      capsys)
    assert code == 2 and "is not a dense convolution; the layers slimlab prunes by default are" in err, err


def test_a_one_class_data_set_is_refused(tmp_path, capsys):
    data = _folder(tmp_path / "one", ("only",))
    code, err = _main(["train", "--data", f"imagefolder:{data}", "--epochs", "1", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "needs at least two" in err


def test_a_class_folder_link_loop_and_a_float_image_of_nan_are_listed(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    data = _folder(tmp_path / "d", ("a", "b"))
    (data / "train" / "loop").symlink_to(data / "train" / "loop")
    code, err = _main(["train", "--data", f"imagefolder:{data}", "--epochs", "1", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "loop (a class folder link that cannot be followed)" in err
    (data / "train" / "loop").unlink()
    Image.fromarray(np.full((16, 16), np.nan, dtype=np.float32), mode="F").save(data / "train" / "a" / "nan.tiff")
    code, err = _main(["train", "--data", f"imagefolder:{data}", "--epochs", "1", "--out", str(tmp_path / "o2")],
                      capsys)
    assert code == 2 and "nan.tiff (non-finite pixel values)" in err


def test_an_image_size_the_model_cannot_take_is_one_line_before_training(tmp_path, capsys):
    code, err = _main(["train", "--data", "fake", "--model", "vgg16", "--image-size", "8", "--epochs", "1", "--out",
                       str(tmp_path / "v")], capsys)
    assert code == 2 and "cannot run on 8x8 images" in err
    assert not (tmp_path / "v" / "last.pt").exists()


def test_a_fold_count_the_data_cannot_fill_is_one_line_before_training(abc_run, capsys):
    """abc_run has 6 training images per class, 10% held out for validation: 5 or 6 per class remain."""
    t0 = __import__("time").time()
    code, err = _main(["labels", str(abc_run), "--folds", "50"], capsys)
    assert code == 2 and "--folds 50: class" in err and "or fewer" in err and len(err.strip().splitlines()) == 1
    assert not (abc_run / "label_issues.csv").exists() and __import__("time").time() - t0 < 30


def test_profile_refuses_an_input_size_the_architecture_or_the_memory_cannot_take(capsys):
    code, err = _main(["profile", "vgg16", "--input-size", "8", "--no-onnx"], capsys)
    assert code == 2 and "cannot run on 8x8 images" in err and "--input-size" in err
    code, err = _main(["profile", "resnet20", "--input-size", "512", "--batch", "4096", "--no-onnx"], capsys)  # ~200 GB
    assert code == 2 and "GiB of activations" in err and "are free" in err


def test_activation_estimate_by_hand():
    """A single 3x3 conv to 8 channels on 32x32: the largest tensor is its output, 8*32*32 floats; x3 x4 bytes."""
    from slimlab.profile.macs import activation_bytes

    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert activation_bytes(conv, 32) == 3 * 4 * 8 * 32 * 32
    assert activation_bytes(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1)), 32) == 3 * 4 * 3 * 32 * 32  # input wins


def test_names_with_mathtext_markup_are_plotted_as_plain_text(tmp_path):
    """A class named 'a$b' (an unbalanced mathtext '$') in the label-issues grid and the channel chart."""
    from slimlab.io import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.set_title("a$b \\frac{x}$ ^_{")
    ax.set_xticks([0, 1], ["x$y", "$$"])
    save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
