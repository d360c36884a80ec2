import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from slimlab.engine.optim import lr_at
from slimlab.losses import PencilObjective, pencil_loss


def manual_pencil(logits, yt, y, alpha, beta, compat="official"):
    """The loss written out from its definition, class by class."""
    b, k = logits.shape
    total = 0.0
    for i in range(b):
        f = torch.softmax(logits[i], 0)
        yd = torch.softmax(yt[i], 0)
        lc = sum(f[j] * (torch.log(f[j]) - torch.log(yd[j])) for j in range(k)) / k  # KL(f||y_d), class-mean
        if compat == "paper":
            lo = -torch.log(yd[y[i]])  # Eq. 7: CE between y_d and the noisy label
        else:  # the official code: CrossEntropyLoss(y_d, y) = -y_d[y] + log sum_j exp(y_d[j])
            lo = -yd[y[i]] + torch.log(sum(torch.exp(yd[j]) for j in range(k)))
        le = -sum(f[j] * torch.log(f[j]) for j in range(k)) / k  # entropy of f, class-mean
        total = total + lc + alpha * lo + beta * le
    return total / b


@pytest.mark.parametrize("compat", ["official", "paper"])
def test_pencil_loss_matches_definition_and_is_differentiable_in_both(compat):
    torch.manual_seed(0)
    logits = torch.randn(5, 4, requires_grad=True)
    yt = torch.randn(5, 4, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 1])
    loss = pencil_loss(logits, yt, y, 0.4, 0.1, compat)
    ref = manual_pencil(logits, yt, y, 0.4, 0.1, compat)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    g1, g2 = torch.autograd.grad(loss, [logits, yt])
    r1, r2 = torch.autograd.grad(ref, [logits, yt])
    assert torch.allclose(g1, r1, atol=1e-6) and torch.allclose(g2, r2, atol=1e-6)


def test_official_compatibility_pulls_weaker_than_the_papers():
    """The issue's measurement, by hand: d L_o / d y~ of the paper's form is 2x the official one's at
    y_d = (0.5, 0.5) and 10x at uniform over 10 classes (the noisy label's entry)."""
    def pull(yd, compat):
        yt = torch.log(torch.tensor(yd)).requires_grad_(True)  # softmax(yt) = yd
        (g,) = torch.autograd.grad(pencil_loss(torch.zeros(1, len(yd)), yt[None], torch.tensor([0]), 1.0, 0.0,
                                               compat), [yt])
        return float(g.abs().sum())
    assert pull([0.5, 0.5], "paper") / pull([0.5, 0.5], "official") == pytest.approx(2.0, rel=0.05)
    assert pull([0.1] * 10, "paper") / pull([0.1] * 10, "official") == pytest.approx(10.0, rel=0.1)


def test_lambda_distance_rule_moves_y_tilde_as_far_as_the_official_schedule():
    """Stage 2 of 13 epochs with lam_rule=distance moves y~ as far as the official 130 epochs at lambda = 600,
    for the same gradient at every update (each sample is updated once per epoch)."""
    targets = torch.tensor([0, 1])
    official = PencilObjective(targets, 2, epochs=320, lam=600.0)
    short = PencilObjective(targets, 2, epochs=32, lam=600.0, lam_rule="distance")
    assert (official.stage2 - official.stage1, short.stage2 - short.stage1) == (130, 13)
    g = torch.tensor([[0.01, -0.01], [-0.02, 0.02]])
    batch = {"index": torch.tensor([0, 1]), "target": targets}
    moved = []
    for obj in (official, short):
        start = obj.y_tilde.clone()
        for _ in range(obj.stage2 - obj.stage1):  # one update per sample per stage-2 epoch, through after_step
            obj._leaf = obj.y_tilde[batch["index"]].clone().requires_grad_(True)
            obj._leaf.grad = g.clone()
            obj.after_step(batch)
        moved.append(obj.y_tilde - start)
    assert torch.allclose(moved[0], moved[1], rtol=1e-5)
    assert PencilObjective(targets, 2, epochs=32, lam=600.0).lam == 600.0  # fixed: as given


def test_y_tilde_update_is_one_manual_gradient_step():
    torch.manual_seed(1)
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    obj = PencilObjective(targets, 3, epochs=10, alpha=0.4, beta=0.1, lam=600.0, stage1=0, stage2=10)
    assert torch.equal(obj.y_tilde, 10.0 * F.one_hot(targets, 3).float())  # K * onehot
    obj.on_epoch_start(0)
    before = obj.y_tilde.clone()
    idx = torch.tensor([4, 1, 3])
    logits = torch.randn(3, 3, requires_grad=True)
    batch = {"index": idx, "target": targets[idx]}
    loss = obj.loss(logits, batch, 0)
    loss.backward()
    obj.after_step(batch)
    # by hand: y~ <- y~ - lambda * d loss / d y~ for the batch rows only
    leaf = before[idx].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(pencil_loss(logits.detach(), leaf, targets[idx], 0.4, 0.1), [leaf])
    expect = before.clone()
    expect[idx] = before[idx] - 600.0 * g
    assert torch.allclose(obj.y_tilde, expect, atol=1e-6)
    assert torch.equal(obj.y_tilde[[0, 2, 5]], before[[0, 2, 5]])  # other samples untouched


def test_stage_transitions_and_learning_rates():
    obj = PencilObjective(torch.zeros(4, dtype=torch.long), 2, epochs=32, lr=0.06, lr2=0.2)
    assert (obj.stage1, obj.stage2) == (7, 20)  # 70/320 and 200/320 of 32 epochs
    assert [obj.stage_of(e) for e in (0, 6, 7, 19, 20, 31)] == [1, 1, 2, 2, 3, 3]
    assert obj.lr_at(5) == 0.06 and obj.lr_at(19.9) == 0.06
    assert obj.lr_at(20) == pytest.approx(0.2) and obj.lr_at(24.5) == pytest.approx(0.02)
    assert obj.lr_at(31.9) == pytest.approx(0.002)  # lr2/100, never 0 (the official code's // bug)
    stage1 = PencilObjective(torch.zeros(2, dtype=torch.long), 2, epochs=10, stage1=2, stage2=5)
    logits = torch.randn(2, 2)
    b = {"index": torch.tensor([0, 1]), "target": torch.tensor([0, 0])}
    stage1.on_epoch_start(0)
    assert stage1.loss(logits, b, 0).item() == pytest.approx(F.cross_entropy(logits, b["target"]).item())
    stage1.on_epoch_start(6)
    yd = stage1.y_d[b["index"]]
    lc = (logits.softmax(1) * (logits.log_softmax(1) - yd.log())).mean()
    assert stage1.loss(logits, b, 6).item() == pytest.approx(lc.item(), rel=1e-6)


def test_the_pencil_schedule_is_the_objectives_own_curve():
    """--schedule pencil (for CE on PENCIL's recipe) is the curve PencilObjective applies: 40 epochs, stage 2 ends
    at round(40 * 200 / 320) = 25, thirds of 5 epochs: 0.06, then 0.2, 0.02, 0.002."""
    obj = PencilObjective(torch.zeros(4, dtype=torch.long), 10, 40, lr=0.06, lr2=0.06 * 10 / 3)  # build_objective's
    expected = {0: 0.06, 24.9: 0.06, 25: 0.2, 29.9: 0.2, 30: 0.02, 35: 0.002, 39.99: 0.002}
    for e, lr in expected.items():
        assert lr_at(e, 0.06, 40, "pencil") == pytest.approx(lr) == obj.lr_at(e), e
    for k in range(400):
        assert lr_at(k / 10, 0.06, 40, "pencil") == obj.lr_at(k / 10)


def test_pencil_run_resume_restores_y_tilde(tmp_path):
    from slimlab.engine import load_checkpoint

    args = ["train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 8}", "--loss", "pencil",
            "--loss-kwargs", "{stage1: 1, stage2: 3}", "--noise", "symmetric:0.4", "--epochs", "4", "--lr", "0.05",
            "--threads", "1"]
    full = run_cli(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    part = run_cli(*args, "--stop-after", "2", "--out", str(tmp_path / "part"))
    assert part.returncode == 0, part.stderr
    assert load_checkpoint(tmp_path / "part" / "last.pt")["epoch"] == 2
    res = run_cli("train", "--resume", str(tmp_path / "part"))
    assert res.returncode == 0, res.stderr
    a = load_checkpoint(tmp_path / "full" / "last.pt")["objective"]["y_tilde"]
    b = load_checkpoint(tmp_path / "part" / "last.pt")["objective"]["y_tilde"]
    assert torch.equal(a, b)
    assert not torch.equal(a.argmax(1), torch.zeros_like(a.argmax(1)))
    noise = json.loads((tmp_path / "full" / "noise.json").read_text())
    assert noise["kind"] == "symmetric" and 0.3 < noise["realised_rate"] < 0.4


def test_two_process_ddp_agrees_on_y_tilde(tmp_path):
    import os
    import subprocess
    import sys

    from slimlab.engine import load_checkpoint

    base = ["train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{bn: false, width: 8}", "--no-augment",
            "--loss", "pencil", "--loss-kwargs", "{stage1: 0, stage2: 2, lam: 60}", "--noise", "symmetric:0.4",
            "--epochs", "2", "--batch-size", "32", "--lr", "0.05", "--threads", "1", "--progress", "none"]
    one = run_cli(*base, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          str(30500 + os.getpid() % 1000), "-m", "slimlab", *base, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "last.pt")["objective"]["y_tilde"]
    b = load_checkpoint(tmp_path / "two" / "last.pt")["objective"]["y_tilde"]
    init = 10.0 * F.one_hot(a.argmax(1), a.shape[1]).float()
    assert (a - init).abs().sum() > 1.0  # y~ really moved
    assert torch.allclose(a, b, atol=1e-4)  # rank 0 holds every rank's updates, scaled as in one process


def test_label_issues_find_obvious_flips(tmp_path):
    out = tmp_path / "noisy"
    r = run_cli("train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 16}", "--noise",
                "symmetric:0.3", "--noise-exclude-true", "--epochs", "10", "--batch-size", "32", "--lr", "0.05",
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    r = run_cli("labels", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "label_issues.json").read_text())
    # fake classes are trivially separable, so out-of-sample predictions expose the flips
    assert rep["precision"] > 0.9 and rep["recall"] > 0.9, rep
    assert rep["corrected_accuracy"] > rep["given_accuracy"]
    lines = (out / "label_issues.csv").read_text().splitlines()
    assert lines[0].startswith("index,given_label,corrected_label,confidence")
    susp = [float(x.split(",")[4]) for x in lines[1:]]
    assert susp == sorted(susp, reverse=True)
    assert (out / "label_issues.png").is_file()


def test_an_own_loop_needs_no_on_epoch_start_nor_to_and_takes_numpy_int32_labels():
    """A hand-written loop: numpy int32 labels, the stage read from the epoch passed to loss(), y~ moved to the
    logits' device on first use ('meta' stands in for a GPU: before, stage 2 failed there, epochs into a run)."""
    noisy = np.array([0, 1, 2, 1], dtype=np.int32)
    p = PencilObjective(noisy, 3, epochs=4, stage1=1, stage2=3)
    batch = {"target": torch.as_tensor(noisy), "index": torch.arange(4)}
    stages = []
    for epoch in range(4):
        logits = torch.randn(4, 3, requires_grad=True)
        p.loss(logits, batch, epoch).backward()
        p.after_step(batch)
        stages.append(p.stage)
    assert stages == [1, 2, 2, 3] and p.y_tilde.dtype == torch.float32
    meta = {"target": batch["target"].to("meta"), "index": batch["index"]}
    p.loss(torch.zeros(4, 3, device="meta", requires_grad=True), meta, 1).backward()
    p.after_step(meta)
    assert p.y_tilde.device.type == "meta"
