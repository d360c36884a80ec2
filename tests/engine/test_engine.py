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
    assert f"run directory: {part} (resuming at epoch" in res.stderr  # the first line says where (last.pt's epoch)
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(part / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len((part / "metrics.jsonl").read_text().splitlines()) == 4
    s_full = json.loads((tmp_path / "full" / "summary.json").read_text())
    s_part = json.loads((part / "summary.json").read_text())
    for key in ("best_epoch", "best_val_acc", "test_acc", "test_acc_at_best_val"):  # best.pt is reloaded on resume
        assert s_part[key] == s_full[key], key


def _ddp(tmp_path, name, extra, nproc):
    out = tmp_path / name
    base = ["train", "--data", "fake", "--model", "convnet", "--epochs", "2", "--batch-size", "32",
            "--lr", "0.05", "--no-augment", "--no-amp", "--threads", "1", "--progress", "none", "--out", str(out),
            *extra]
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
    # with BN, a few steps only: one process's native BN and the ranks' synced BN round differently, and
    # 2 epochs of SGD amplify that to ~1e-4 (measured); after 4 steps they agree to ~3e-7
    extra = (["--model-kwargs", "{bn: false}"] if kind == "nobn"
             else ["--sync-bn", "--epochs", "1", "--train-subset", "128"])
    one, s1 = _ddp(tmp_path, "one", extra, 1)
    two, s2 = _ddp(tmp_path, "two", extra, 2)
    assert s2["world_size"] == 2 and s1["world_size"] == 1
    for k in one:
        assert torch.allclose(one[k].float(), two[k].float(), atol=2e-5, rtol=1e-4), k
    assert s1["test_acc"] == pytest.approx(s2["test_acc"], abs=0.006)


NAN_ON_ONE_RANK = '''
import sys
import torch
import torch.nn as nn
from slimlab.cli.main import main
from slimlab.config import TrainConfig
from slimlab.engine import Loaders, fit
from slimlab.engine.distributed import setup
from slimlab.losses import Objective


class NanOnRank1(Objective):
    steps = 0

    def loss(self, logits, batch, epoch):
        self.steps += 1
        loss = super().loss(logits, batch, epoch)
        return loss * float("nan") if self.dist.rank == 1 and self.steps == 3 else loss


class Batches:
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.data = [{"image": torch.randn(8, 3, 8, 8, generator=g), "target": torch.randint(0, 4, (8,), generator=g)}
                     for _ in range(6)]

    def __len__(self):
        return len(self.data)

    def set_epoch(self, epoch):
        pass

    def __iter__(self):
        return iter(self.data)


def job(args):
    ctx = setup("cpu")
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))
    fit(model, Loaders(Batches()), NanOnRank1(), TrainConfig(epochs=2, lr=0.1, progress="none"), None, ctx)


import slimlab.cli.main as cli
from types import SimpleNamespace

cli.build_parser = lambda: SimpleNamespace(parse_args=lambda argv: SimpleNamespace(func=job))  # the CLI's error path
sys.exit(main([]))
'''


def test_ddp_non_finite_loss_on_one_rank_stops_every_rank(tmp_path):
    """A NaN on rank 1 alone must end both ranks with the one-line error, not leave rank 0 in backward."""
    script = tmp_path / "nan.py"
    script.write_text(NAN_ON_ONE_RANK)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        str(31500 + os.getpid() % 1000), str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert r.stderr.count("slimlab: error: the loss became non-finite at epoch 1, step 3") == 2, r.stderr[-2000:]


def test_cpu_sync_bn_matches_batchnorm_and_reverts(tmp_path):
    """One-process gloo group: CPUSyncBatchNorm equals BatchNorm2d even at |mean| >> std, and reverts exactly."""
    import torch.distributed as dist
    import torch.nn as nn

    from slimlab.engine.sync_bn import CPUSyncBatchNorm, convert_sync_batchnorm, revert_sync_batchnorm

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        ref = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
        with torch.no_grad():
            ref[0].bias.fill_(3000.0)  # float32 E[x^2] - E[x]^2 would lose the variance entirely here
        model = convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)), cuda=False)
        model.load_state_dict(ref.state_dict())
        assert isinstance(model[1], CPUSyncBatchNorm)
        x = torch.randn(8, 3, 5, 5)
        assert torch.allclose(model(x), ref(x), atol=1e-3)
        assert torch.allclose(model[1].running_var, ref[1].running_var, rtol=1e-4)
        weight = model[1].weight
        weight.requires_grad_(False)  # a frozen BN (a probe's trunk) stays frozen
        back = revert_sync_batchnorm(model)
        assert back is model and type(model[1]) is nn.BatchNorm2d
        assert model[1].weight is weight and not model[1].weight.requires_grad
        bare = revert_sync_batchnorm(convert_sync_batchnorm(nn.BatchNorm2d(4, affine=False, track_running_stats=False),
                                                            cuda=False))  # no state at all
        assert type(bare) is nn.BatchNorm2d and bare(torch.randn(2, 4, 3, 3)).shape == (2, 4, 3, 3)
        for k, v in ref.state_dict().items():
            assert torch.allclose(model.state_dict()[k].float(), v.float(), rtol=1e-4), k
    finally:
        dist.destroy_process_group()


def test_in_process_cli_calls_keep_installed_packages_importable(tmp_path):
    """conftest.run_cli drops a user's modules after a call, never installed ones (some cannot load twice)."""
    from conftest import run_cli

    (tmp_path / "usermod_x1.py").write_text("VALUE = 1\n")
    r = run_cli("profile", "resnet20", "--batch", "1", "--iters", "2", cwd=tmp_path)  # imports onnx and friends
    assert r.returncode == 0, r.stderr
    import ml_dtypes  # noqa: F401
    import onnx  # noqa: F401  (still importable in this process)


def test_the_summary_says_where_and_in_what_precision_the_run_trained(tmp_path):
    """A table of runs from several machines names each run's CPU, threads and precision from its summary."""
    from slimlab import api
    from slimlab.config import TrainConfig
    from slimlab.engine.fit import cpu_has_fast_bf16

    common = dict(data="fake", model="convnet", model_kwargs={"width": 4}, epochs=1, batch_size=64, progress="none")
    on = api.train(TrainConfig(**common, out=str(tmp_path / "a")))["machine"]
    off = api.train(TrainConfig(**common, amp=False, out=str(tmp_path / "b")))["machine"]
    assert on["model"] and on["threads"] == torch.get_num_threads() and on["torch"] == torch.__version__
    assert on["train_precision"] == ("bf16 autocast" if cpu_has_fast_bf16() else "fp32")
    assert off["train_precision"] == "fp32"
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["machine"] == on
