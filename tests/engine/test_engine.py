import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import run_cli
from slimlab import api
from slimlab.config import TrainConfig
from slimlab.engine import load_checkpoint, lr_at


def test_short_digits_run_learns_and_writes_a_run_dir(tmp_path):
    out = tmp_path / "run"
    s = api.train(TrainConfig(data="digits", model="convnet", epochs=4, lr=0.05, batch_size=64, out=str(out),
                              progress="none"))
    assert s["test_acc"] > 0.6  # chance is 0.10
    for f in ("config.yaml", "metrics.jsonl", "summary.json", "last.pt", "best.pt", "curves.png"):
        assert (out / f).is_file(), f
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4]
    summary = json.loads((out / "summary.json").read_text())
    for key in ("best_val_acc", "test_acc", "params", "macs", "epochs", "wall_s", "images_per_s"):
        assert summary[key] is not None, key
    ck = load_checkpoint(out / "best.pt")
    assert ck["model_name"] == "convnet" and "optimizer" not in ck
    # evaluate needs nothing but the checkpoint
    r = api.evaluate_checkpoint(str(out / "last.pt"))
    assert abs(r["test_acc"] - s["test_acc"]) < 1e-9


def test_lr_schedules():
    assert lr_at(0, 0.1, 10, "cosine") == pytest.approx(0.1)
    assert lr_at(5, 0.1, 10, "cosine") == pytest.approx(0.05)
    assert lr_at(4.9, 0.1, 10, "step", [5, 8], 0.1) == pytest.approx(0.1)
    assert lr_at(5, 0.1, 10, "step", [5, 8], 0.1) == pytest.approx(0.01)
    assert lr_at(9, 0.1, 10, "step", [0.5, 0.8], 0.1) == pytest.approx(0.001)
    assert lr_at(0.5, 0.1, 10, "cosine", warmup_epochs=1) == pytest.approx(0.05)


def _weights(path):
    return load_checkpoint(path)["state_dict"]


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    args = ["train", "--data", "digits", "--model", "resnet20", "--model-kwargs", "{width_mult: 0.5}",
            "--epochs", "4", "--batch-size", "64", "--lr", "0.05", "--threads", "1", "--progress", "log"]
    full = run_cli(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    part = tmp_path / "part"
    env = {**os.environ, "SLIMLAB_CACHE": "off"}
    proc = subprocess.Popen([sys.executable, "-m", "slimlab", *args, "--out", str(part)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        m = part / "metrics.jsonl"
        if m.is_file() and len(m.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # really killed mid-run
    done = len((part / "metrics.jsonl").read_text().splitlines())
    assert 2 <= done < 4
    res = run_cli("train", "--resume", str(part))
    assert res.returncode == 0, res.stderr
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(part / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len((part / "metrics.jsonl").read_text().splitlines()) == 4


def _ddp(tmp_path, name, extra, nproc):
    out = tmp_path / name
    base = ["train", "--data", "fake", "--model", "convnet", "--epochs", "2", "--batch-size", "32",
            "--lr", "0.05", "--no-augment", "--threads", "1", "--progress", "none", "--out", str(out), *extra]
    if nproc == 1:
        r = run_cli(*base)
    else:
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                            "--master_port", str(29500 + os.getpid() % 1000), "-m", "slimlab", *base],
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return _weights(out / "last.pt"), json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("kind", ["nobn", "syncbn"])
def test_ddp_two_processes_equal_one_process(tmp_path, kind):
    extra = ["--model-kwargs", "{bn: false}"] if kind == "nobn" else ["--sync-bn"]
    one, s1 = _ddp(tmp_path, "one", extra, 1)
    two, s2 = _ddp(tmp_path, "two", extra, 2)
    assert s2["world_size"] == 2 and s1["world_size"] == 1
    for k in one:
        assert torch.allclose(one[k].float(), two[k].float(), atol=2e-5, rtol=1e-4), k
    assert s1["test_acc"] == pytest.approx(s2["test_acc"], abs=0.006)
