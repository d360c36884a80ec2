"""The CPU speed defaults: bf16 autocast for training only where the CPU has bf16 units, fp32 evaluation."""

import copy
import importlib

import pytest
import torch
import torch.nn as nn

from conftest import ListLoader
from slimlab.config import TrainConfig
from slimlab.engine import Loaders, Objective, evaluate, fit

fit_mod = importlib.import_module("slimlab.engine.fit")  # the module (the package exports a function `fit`)


def Batches(n=3) -> ListLoader:  # noqa: N802  (used like the class it was)
    g = torch.Generator().manual_seed(0)
    return ListLoader([{"image": torch.randn(8, 3, 8, 8, generator=g), "target": torch.randint(0, 4, (8,), generator=g),
                        "index": torch.arange(8)} for _ in range(n)])


def _model_recording_dtypes():
    seen = []
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(4, 4))
    m[0].register_forward_hook(lambda mod, i, o: seen.append((mod.training, o.dtype)))
    return m, seen


@pytest.mark.parametrize("fast_bf16, amp, want", [(True, True, torch.bfloat16), (True, False, torch.float32),
                                                  (False, True, torch.float32)])
def test_training_dtype_follows_the_cpu_and_the_option(monkeypatch, fast_bf16, amp, want):
    monkeypatch.setattr(fit_mod, "cpu_has_fast_bf16", lambda: fast_bf16)
    m, seen = _model_recording_dtypes()
    fit(m, Loaders(Batches(), test=Batches(1)), Objective(), TrainConfig(epochs=1, progress="none", amp=amp), None)
    train_dtypes = {d for training, d in seen if training}
    eval_dtypes = {d for training, d in seen if not training}
    assert train_dtypes == {want}
    assert eval_dtypes == {torch.float32}  # evaluation is fp32 on CPU: `slimlab evaluate` reproduces it
    assert all(p.dtype == torch.float32 for p in m.parameters())  # master weights stay fp32


def test_channels_last_by_default_and_evaluate_matches_a_plain_fp32_model(monkeypatch):
    m, _ = _model_recording_dtypes()
    fit(m, Loaders(Batches()), Objective(), TrainConfig(epochs=1, progress="none"), None)
    assert m[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = copy.deepcopy(m).to(memory_format=torch.contiguous_format)
    assert plain[0].weight.is_contiguous()
    a, b = evaluate(m, Batches(2)), evaluate(plain, Batches(2))
    assert a["acc"] == b["acc"] and a["loss"] == pytest.approx(b["loss"], rel=1e-5)
