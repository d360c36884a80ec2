"""Task-level behaviour: labels writes the probabilities and warns on a weak detector; prune fails fast."""

import json
import time

import numpy as np

from conftest import run_cli
from slimlab.tasks.labels import _weak_detector


def test_weak_detector_warning_by_hand():
    assert _weak_detector({"flagged_fraction": 0.2, "corrected_accuracy": 0.9, "given_accuracy": 0.7}) is None
    w = _weak_detector({"flagged_fraction": 0.2, "corrected_accuracy": 0.5, "given_accuracy": 0.6})
    assert "less accurate (50.0%) than the given ones (60.0%)" in w
    assert "disagrees with 90%" in _weak_detector({"flagged_fraction": 0.9})
    assert _weak_detector({"flagged_fraction": 0.3}) is None
    assert _weak_detector({"flagged_fraction": 0.55, "precision": 0.99}) is None  # 60% noise, flags confirmed


def test_labels_writes_pred_probs_for_cleanlab(tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 8}", "--noise",
                "symmetric:0.2", "--epochs", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = run_cli("labels", str(out), "--folds", "2", "--cv-epochs", "1", "--grid", "0")
    assert r.returncode == 0, r.stderr
    probs = np.load(out / "pred_probs.npy")
    rep = json.loads((out / "label_issues.json").read_text())
    assert probs.dtype == np.float32 and probs.shape[1] == 10
    train_rows = probs[probs.sum(1) > 0]
    assert len(train_rows) == rep["train_samples"] and np.allclose(train_rows.sum(1), 1, atol=1e-4)


def test_prune_rejects_a_bad_method_before_any_work():
    t0 = time.time()
    r = run_cli("prune", "no/such/checkpoint.pt", "--method", "l2")
    assert r.returncode == 2 and "unknown pruning method 'l2'" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("prune", "no/such/checkpoint.pt", "--mode", "sideways")
    assert r.returncode == 2 and "invalid choice: 'sideways'" in r.stderr
    assert time.time() - t0 < 60


def test_prune_keeps_the_image_size_the_model_was_trained_at(tmp_path):
    """A model trained at --image-size 16 is pruned and fine-tuned at 16, not at the data's native size."""
    from slimlab import api
    from slimlab.config import TrainConfig
    from slimlab.engine import load_checkpoint
    from slimlab.models.io import model_from_checkpoint
    from slimlab.profile import count_macs
    from slimlab.prune.config import PruneConfig

    api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=1,
                          train_subset=200, progress="none", out=str(tmp_path / "t")))
    s = api.prune(PruneConfig(checkpoint=str(tmp_path / "t"), method="weight_sum", keep_ratio=0.5, mode="oneshot",
                              finetune_epochs=1, progress="none", out=str(tmp_path / "p")))
    ck = load_checkpoint(str(tmp_path / "p"))
    assert ck["config"]["image_size"] == 16
    assert s["macs"] == count_macs(model_from_checkpoint(ck), 16) < count_macs(model_from_checkpoint(ck), 32)


def test_labels_detectors_on_a_ce_run(tmp_path, capsys):
    """model and small-loss judge with the run's own network; pencil-labels needs a PENCIL run (one line)."""
    from slimlab import api
    from slimlab.cli.main import main
    from slimlab.config import TrainConfig

    out = tmp_path / "run"
    api.train(TrainConfig(data="fake", model="convnet", model_kwargs={"width": 8}, noise="symmetric:0.3", epochs=2,
                          progress="none", out=str(out)))
    for det in ("small-loss", "model"):
        assert main(["labels", str(out), "--detector", det, "--grid", "0"]) == 0
        rep = json.loads((out / "label_issues.json").read_text())
        assert rep["source"].startswith(f"{det}:") and 0 <= rep["precision"] <= 1
    capsys.readouterr()
    assert main(["labels", str(out), "--detector", "pencil-labels"]) == 2
    assert "needs a PENCIL run" in capsys.readouterr().err

    # the last detector's flags (model: argmax differs) applied to the given labels: what --labels-from uses
    import csv

    import numpy as np

    from slimlab.tasks.prune import corrected_labels

    fixed = np.load(out / "corrected_labels.npy")
    rows = {int(r["index"]): r for r in csv.DictReader((out / "label_issues.csv").open())}
    changed = {i for i in rows if fixed[i] != int(rows[i]["given_label"])}
    assert len(changed) == rep["flagged"] and all(fixed[i] == int(rows[i]["corrected_label"]) for i in changed)
    assert corrected_labels(out).tolist() == fixed.tolist()
    # the run trains on after labels ran: its corrections are stale and refused in one line
    import pytest

    from slimlab.errors import SlimlabError

    made = json.loads((out / "corrected_labels.json").read_text())
    (out / "corrected_labels.json").write_text(json.dumps({**made, "epoch": made["epoch"] - 1}))
    with pytest.raises(SlimlabError, match="run slimlab labels .* again"):
        corrected_labels(out)


def test_auto_detector_is_the_pencil_network_on_pencil_runs_and_kfold_otherwise(tmp_path):
    from slimlab import api
    from slimlab.config import TrainConfig
    from slimlab.engine import load_checkpoint
    from slimlab.tasks.labels import auto_detector

    common = dict(data="fake", model="convnet", model_kwargs={"width": 8}, noise="symmetric:0.3", epochs=2,
                  progress="none")
    api.train(TrainConfig(**common, out=str(tmp_path / "ce")))
    api.train(TrainConfig(**common, loss="pencil", out=str(tmp_path / "pencil")))
    assert auto_detector(load_checkpoint(tmp_path / "ce" / "last.pt")) == "kfold"
    assert auto_detector(load_checkpoint(tmp_path / "pencil" / "last.pt")) == "model"
    assert auto_detector({}) == "kfold"  # no checkpoint yet


def test_evaluate_uses_the_image_size_the_model_was_trained_at(tmp_path):
    """A digits model trained at 16x16 (the demo's size) is evaluated at 16x16, reproducing its run's figure (it
    was evaluated at 32x32: the demo's PENCIL model, 96.94% in its run, read 27.30%)."""
    from slimlab import api
    from slimlab.config import TrainConfig

    s = api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=2,
                              train_subset=300, progress="none", out=str(tmp_path / "t")))
    r = api.evaluate(api.EvaluateConfig(checkpoint=str(tmp_path / "t" / "last.pt")))
    assert r["test_acc"] == s["test_acc"] and r["macs"] == s["macs"]
