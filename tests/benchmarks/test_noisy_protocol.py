"""noisy_cifar.py compares methods, not optimisers: one shared optimiser, clipping for all or none, clean
validation; PENCIL's own recipe only in its named rows, with CE on the same recipe."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPTIMISER = ("optimizer", "lr", "momentum", "nesterov", "weight_decay", "decay_norm_and_bias", "schedule",
             "batch_size", "epochs", "clip_grad_norm", "clean_val", "track_test", "val_fraction", "augment")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("noisy_cifar", ROOT / "benchmarks" / "noisy_cifar.py")
    mod = importlib.util.module_from_spec(spec)
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("clip", [0.0, 5.0])
def test_every_method_shares_one_optimiser(bench, clip):
    common = {"data": "fake", "model": "resnet20", "train_subset": 100, "epochs": 3, "track_test": True,
              "val_fraction": 0.05, "augment": True}
    for noise in bench.NOISES:
        rows = {m: bench.row_config(m, noise, common, 0.05, clip, 0) for m in bench.METHODS}
        shared = {k: rows["ce"][k] for k in OPTIMISER}
        assert shared["clip_grad_norm"] == clip and shared["clean_val"] is True
        for m, kw in rows.items():
            assert {k: kw[k] for k in OPTIMISER} == shared, m
        own = {m: bench.row_config(m, noise, common, 0.05, clip, 0) for m in bench.EXTRA}
        assert {k: own["pencil_official"][k] for k in OPTIMISER} == {k: own["ce_pencil_recipe"][k] for k in OPTIMISER}
        assert own["pencil_official"]["loss"] == "pencil" and own["ce_pencil_recipe"]["loss"] == "ce"
