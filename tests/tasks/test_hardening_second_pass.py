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
