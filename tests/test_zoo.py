"""The zoo: checkpoints load safely, `zoo:NAME` resolves everywhere, and evaluation reproduces the record."""

import json

import pytest
import torch

from conftest import SHARED_CIFAR, run_cli
from slimlab import zoo
from slimlab.engine import load_checkpoint
from slimlab.errors import SlimlabError

ENTRIES = ["resnet20-cifar10", "resnet56-cifar10"]


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_is_complete_and_loads_without_code(name):
    d = zoo.zoo_dir() / name
    for f in ("model.pt", "config.yaml", "metrics.jsonl", "summary.json"):
        assert (d / f).is_file(), f
    raw = torch.load(d / "model.pt", weights_only=True, map_location="cpu")
    assert "optimizer" not in raw and raw["model_name"] == name.split("-")[0]
    ck = load_checkpoint(f"zoo:{name}")
    assert ck["path"] == str(d / "model.pt")
    s = json.loads((d / "summary.json").read_text())
    assert s["train_images"] == 50000 and s["test_acc"] >= 0.85  # 87.36% (the 91% goal is not met: README)


def test_unknown_zoo_name_is_a_clear_error():
    with pytest.raises(SlimlabError, match="unknown zoo model 'zoo:nope'"):
        load_checkpoint("zoo:nope")


@pytest.mark.skipif(not SHARED_CIFAR.is_dir(), reason="the CIFAR-10 copy is not beside the project")
@pytest.mark.parametrize("name", ENTRIES)
def test_evaluate_reproduces_the_recorded_accuracy_on_a_slice(name):
    s = json.loads((zoo.zoo_dir() / name / "summary.json").read_text())
    r = run_cli("evaluate", f"zoo:{name}", "--data", f"imagefolder:{SHARED_CIFAR}", "--test-subset", "1000", "--json",
                timeout=600)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["n"] == 1000
    assert got["test_acc"] == pytest.approx(s["test_acc_first1000"], abs=0.0005)


def test_models_lists_the_zoo():
    r = run_cli("models", "--family", "plain")
    assert r.returncode == 0, r.stderr
    assert all(f"zoo:{n}" in r.stdout for n in ENTRIES)
