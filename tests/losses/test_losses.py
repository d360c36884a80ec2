"""Each loss against values computed by hand from its formula."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slimlab.errors import SlimlabError
from slimlab.losses import (
    bootstrap_hard_loss,
    bootstrap_soft_loss,
    build_objective,
    estimate_transition,
    forward_loss,
    gce_loss,
    mae_loss,
    nce_rce_loss,
    sce_loss,
)

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
TARGET = torch.tensor([0, 2])


def probs():
    return [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in LOGITS.tolist()]


def test_gce_by_hand():
    p = probs()
    q = 0.7
    ref = np.mean([(1 - p[0][0] ** q) / q, (1 - p[1][2] ** q) / q])
    assert gce_loss(LOGITS, TARGET, q) == pytest.approx(ref, rel=1e-6)


def test_sce_by_hand():
    p = probs()
    ce = np.mean([-math.log(p[0][0]), -math.log(p[1][2])])
    # RCE = -sum_k p_k log(clamp(onehot, 1e-4)) = -log(1e-4) * (1 - p_y)
    rce = np.mean([-math.log(1e-4) * (1 - p[0][0]), -math.log(1e-4) * (1 - p[1][2])])
    assert sce_loss(LOGITS, TARGET, 0.1, 1.0) == pytest.approx(0.1 * ce + 1.0 * rce, rel=1e-5)


def test_mae_by_hand():
    p = probs()
    ref = np.mean([sum(abs(p[0][k] - (k == 0)) for k in range(3)), sum(abs(p[1][k] - (k == 2)) for k in range(3))])
    assert mae_loss(LOGITS, TARGET, scale=2.0) == pytest.approx(ref, rel=1e-6)  # Ghosh et al.: ||p - e_y||_1
    assert mae_loss(LOGITS, TARGET) == pytest.approx(ref / 2, rel=1e-6)  # the APL reference code: 1 - p_y


def test_truncated_gce_by_hand():
    from slimlab.losses import gce_loss, gce_trunc_loss

    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4]])).requires_grad_(True)
    target = torch.tensor([0, 0])  # p_y = 0.7 (kept) and 0.3 (below k = 0.5: truncated)
    q, k = 0.7, 0.5
    ref = ((1 - 0.7**q) / q + (1 - k**q) / q) / 2
    loss = gce_trunc_loss(logits, target)
    assert loss.item() == pytest.approx(ref, rel=1e-5)
    (g,) = torch.autograd.grad(loss, [logits])
    assert torch.all(g[1] == 0) and torch.any(g[0] != 0)  # a truncated sample gives no gradient
    assert gce_loss(logits, target, q).item() == pytest.approx(((1 - 0.7**q) + (1 - 0.3**q)) / q / 2, rel=1e-5)


def test_truncated_gce_learns_from_scratch_then_truncates():
    """At initialisation every p_y is about 1/K < k: truncating from the start would give no gradient at all. The
    objective trains with plain L_q for the first 40/120 of the epochs, as the paper does, then truncates."""
    from slimlab.losses import build_objective

    obj = build_objective("gce_trunc", 10, epochs=12)
    assert obj.start == 4
    logits = torch.zeros(8, 10, requires_grad=True)  # uniform: p_y = 0.1 < k = 0.5
    batch = {"target": torch.arange(8) % 10, "index": torch.arange(8)}
    (g,) = torch.autograd.grad(obj.loss(logits, batch, 0), [logits])
    assert g.abs().sum() > 0  # learns in the first epochs
    (g,) = torch.autograd.grad(obj.loss(logits, batch, 4), [logits])
    assert g.abs().sum() == 0  # truncated afterwards: low-confidence samples give nothing


def test_nce_rce_by_hand():
    p = probs()
    nce = np.mean([math.log(p[0][0]) / sum(math.log(v) for v in p[0]),
                   math.log(p[1][2]) / sum(math.log(v) for v in p[1])])
    rce = np.mean([-math.log(1e-4) * (1 - p[0][0]), -math.log(1e-4) * (1 - p[1][2])])
    assert nce_rce_loss(LOGITS, TARGET, 1.0, 1.0) == pytest.approx(nce + rce, rel=1e-5)


def test_bootstrap_by_hand():
    p = probs()
    b = 0.95
    soft = np.mean([-sum((b * (k == t) + (1 - b) * p[i][k]) * math.log(p[i][k]) for k in range(3))
                    for i, t in enumerate((0, 2))])
    assert bootstrap_soft_loss(LOGITS, TARGET, b) == pytest.approx(soft, rel=1e-6)
    b = 0.8
    z = [int(np.argmax(row)) for row in p]  # hard: the predicted class
    hard = np.mean([-sum((b * (k == t) + (1 - b) * (k == z[i])) * math.log(p[i][k]) for k in range(3))
                    for i, t in enumerate((0, 2))])
    assert bootstrap_hard_loss(LOGITS, TARGET, b) == pytest.approx(hard, rel=1e-6)


def test_forward_correction_by_hand_and_identity():
    t = torch.tensor([[0.8, 0.2, 0.0], [0.0, 0.9, 0.1], [0.1, 0.0, 0.9]])
    p = torch.tensor(probs())
    noisy_p = p @ t
    ref = -(noisy_p[0, 0].log() + noisy_p[1, 2].log()) / 2
    assert forward_loss(LOGITS, TARGET, t) == pytest.approx(float(ref), rel=1e-6)
    assert forward_loss(LOGITS, TARGET, torch.eye(3)) == pytest.approx(float(F.cross_entropy(LOGITS, TARGET)), rel=1e-6)


def test_transition_estimator_recovers_t_from_anchor_points():
    t = np.array([[0.7, 0.3, 0.0], [0.0, 0.8, 0.2], [0.1, 0.0, 0.9]])
    # clean posteriors: many near-anchor points of each class, noisy posterior = clean @ T
    rng = np.random.default_rng(0)
    clean = rng.dirichlet([0.3, 0.3, 0.3], size=3000)
    clean[:300] = np.eye(3)[np.arange(300) % 3]  # perfect anchors
    est = estimate_transition(clean @ t, percentile=97)
    assert np.abs(est - t).max() < 0.05


def test_build_objective_names_and_errors():
    for name in ("ce", "gce", "sce", "mae", "nce_rce", "bootstrap_soft", "bootstrap_hard"):
        obj = build_objective(name, 3)
        assert torch.isfinite(obj.loss(LOGITS, {"target": TARGET}, 0))
    with pytest.raises(SlimlabError, match="bad loss_kwargs"):
        build_objective("gce", 3, kwargs={"z": 1})
    with pytest.raises(SlimlabError, match="transition matrix"):
        build_objective("forward", 3)
    with pytest.raises(SlimlabError, match="unknown loss"):
        build_objective("focal", 3)


def test_forward_and_robust_losses_train_from_the_cli(tmp_path):
    import json

    from conftest import run_cli

    for loss, extra in (("forward", []), ("gce", ["--loss-kwargs", "{q: 0.5}"]), ("bootstrap_hard", [])):
        out = tmp_path / loss
        r = run_cli("train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 8}", "--noise",
                    "pairflip:0.3", "--loss", loss, *extra, "--epochs", "1", "--out", str(out))
        assert r.returncode == 0, r.stderr
        s = json.loads((out / "summary.json").read_text())
        assert s["loss"] == loss and s["noise"]["kind"] == "pairflip"
    # forward correction with no known T is a user error, not a traceback
    r = run_cli("train", "--data", "fake", "--loss", "forward", "--epochs", "1", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "transition matrix" in r.stderr
