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


def test_truncated_gce_weights_follow_the_paper_schedule_and_rule():
    """Zhang & Sabuncu's Eq. 11: plain L_q (w = 1) for the first 40/120 of the epochs, then w_i = [p_y > k] from
    eval-mode predictions every 10/120 of the epochs; a pruned sample adds the constant L_q(k), no gradient."""
    from slimlab.losses import build_objective

    obj = build_objective("gce_trunc", 10, epochs=24)  # start 8, every 2
    assert (obj.start, obj.every) == (8, 2)
    assert [e for e in range(24) if obj.wants_train_predictions(e)] == [8, 10, 12, 14, 16, 18, 20, 22]
    logits = torch.zeros(4, 10, requires_grad=True)  # uniform: p_y = 0.1
    batch = {"target": torch.tensor([0, 1, 2, 3]), "index": torch.tensor([3, 2, 1, 0])}
    (g,) = torch.autograd.grad(obj.loss(logits, batch, 0), [logits])
    assert (g.abs().sum(1) > 0).all()  # every sample learns before the first weights exist

    # eval-mode predictions of samples 0..3: the given label's probability 0.9, 0.2, 0.6, 0.5 (k = 0.5)
    probs = torch.full((4, 10), 0.0)
    targets = torch.tensor([3, 2, 1, 0])  # sample i's given label
    for i, py in enumerate([0.9, 0.2, 0.6, 0.5]):
        probs[i, targets[i]] = py
        probs[i, (targets[i] + 1) % 10] = 1 - py
    obj.on_train_predictions(8, probs, torch.arange(4), targets)
    assert obj.weights.tolist() == [1.0, 0.0, 1.0, 0.0]  # p_y > k, strictly
    loss = obj.loss(logits, batch, 8)
    lq, const = (1 - 0.1**0.7) / 0.7, (1 - 0.5**0.7) / 0.7
    assert abs(float(loss.detach()) - (2 * lq + 2 * const) / 4) < 1e-6  # batch order: samples 3, 2, 1, 0
    (g,) = torch.autograd.grad(loss, [logits])
    assert g[0].abs().sum() == 0 and g[2].abs().sum() == 0  # samples 3 and 1: pruned
    assert g[1].abs().sum() > 0 and g[3].abs().sum() > 0
    fresh = build_objective("gce_trunc", 10, epochs=24)
    fresh.load_state_dict(obj.state_dict())  # the weights travel in the checkpoint (exact resume)
    assert fresh.weights.tolist() == obj.weights.tolist()


def test_the_engine_hands_truncated_gce_unaugmented_predictions_of_every_training_sample():
    from slimlab import data as D
    from slimlab.config import TrainConfig
    from slimlab.engine import Loaders, fit
    from slimlab.losses import build_objective
    from slimlab.models import create_model

    ds = D.build("fake")
    calls = []
    obj = build_objective("gce_trunc", 10, epochs=3, kwargs={"start": 1, "every": 1})
    record = obj.on_train_predictions
    obj.on_train_predictions = lambda e, p, i, t: (calls.append((e, sorted(i.tolist()), t[i.argsort()].tolist())),
                                                   record(e, p, i, t))
    idx = torch.arange(100)
    loader = D.BatchLoader(ds.train, idx, 32, mean=ds.mean, std=ds.std, shuffle=True, augment=True, pad=4, flip=True,
                           targets=ds.train.targets)
    cfg = TrainConfig(epochs=3, lr=0.05, progress="none")
    fit(create_model("convnet", num_classes=10, width=4), Loaders(loader), obj, cfg, None)
    assert [c[0] for c in calls] == [1, 2]  # from epoch `start`, every epoch
    assert all(c[1] == list(range(100)) for c in calls)  # each training sample once
    assert calls[0][2] == ds.train.targets[torch.arange(100)].tolist()  # with its given label
    assert len(obj.weights) == 100 and set(obj.weights.tolist()) <= {0.0, 1.0}


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
    assert forward_loss(LOGITS, TARGET, t.numpy()) == forward_loss(LOGITS, TARGET, t)  # corrupt() gives numpy


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


def test_truncated_gce_never_truncates_from_an_untrained_model_and_checks_its_schedule():
    from slimlab.losses import build_objective

    assert build_objective("gce_trunc", 10, epochs=1).start == 1  # one epoch: never truncates (every w would be 0)
    from slimlab.errors import SlimlabError

    with pytest.raises(SlimlabError, match="every >= 1"):
        build_objective("gce_trunc", 10, epochs=3, kwargs={"every": 0})


@pytest.mark.parametrize("dtype", [torch.int32, torch.int16, torch.uint8])
def test_every_loss_takes_labels_of_any_integer_dtype(dtype):
    # a user's own loop may carry int32 or uint8 labels; each loss gives what it gives for int64
    T = torch.eye(3) * 0.8 + 0.1 / 1.5
    for fn in (gce_loss, sce_loss, mae_loss, nce_rce_loss, bootstrap_soft_loss, bootstrap_hard_loss,
               lambda z, t: forward_loss(z, t, T)):
        assert torch.equal(fn(LOGITS, TARGET.to(dtype)), fn(LOGITS, TARGET)), fn


def test_truncated_gce_from_the_start_warns_that_nothing_learns():
    """At initialisation every p_y is about 1/K < k: the per-step truncated loss is a constant (zero gradient). It
    says so; plain GCE does not warn; the paper's scheme (TruncatedGCE) warns once when every weight is 0."""
    import warnings

    from slimlab.losses import TruncatedGCE, gce_loss, gce_trunc_loss

    logits = torch.zeros(8, 10, requires_grad=True)
    y = torch.arange(8)
    with pytest.warns(UserWarning, match="no gradient"):
        loss = gce_trunc_loss(logits, y)
    loss.backward()
    assert logits.grad.abs().max() == 0 and loss.item() == pytest.approx((1 - 0.5**0.7) / 0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gce_loss(logits, y)
        gce_trunc_loss(torch.eye(10)[:8] * 10, y)  # confident samples: kept, no warning
    t = TruncatedGCE(epochs=4, start=1, every=1)
    t.on_train_predictions(1, torch.full((8, 10), 0.1), torch.arange(8), y)
    with pytest.warns(UserWarning, match="all are pruned"):
        t.loss(logits, {"target": y, "index": torch.arange(8)}, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per recomputation, not every step
        t.loss(logits, {"target": y, "index": torch.arange(8)}, 1)


@pytest.mark.parametrize("name", ["gce", "gce_trunc", "sce", "rce", "mae", "nce", "nce_rce", "bootstrap_soft",
                                  "bootstrap_hard", "forward"])
def test_every_loss_reduces_as_torch_does(name):
    """reduction="none" gives each sample's loss (a loop that weights or selects samples needs them); "mean" is
    their mean, what the trainer uses, and "sum" their sum; each sample's value is the loss of that sample alone."""
    import slimlab.losses as L

    fn = getattr(L, f"{name}_loss")
    kw = {"T": np.full((5, 5), 0.05) + 0.75 * np.eye(5)} if name == "forward" else {}
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 5, generator=g) * 3, torch.tensor([0, 1, 2, 3, 4, 0])
    per = fn(logits, y, reduction="none", **kw)
    alone = torch.stack([fn(logits[i:i + 1], y[i:i + 1], **kw) for i in range(6)])
    assert per.shape == (6,) and torch.allclose(per, alone, atol=1e-6)
    assert torch.allclose(fn(logits, y, **kw), per.mean(), atol=1e-6)
    assert torch.allclose(fn(logits, y, reduction="sum", **kw), per.sum(), atol=1e-5)
    with pytest.raises(ValueError, match="reduction must be one of mean, sum, none"):
        fn(logits, y, reduction="avg", **kw)


def test_the_trainer_refuses_a_reduction_in_loss_kwargs():
    with pytest.raises(SlimlabError, match="loss_kwargs.reduction is for your own loop"):
        build_objective("sce", 10, kwargs={"reduction": "none"})
