"""Every loss function checks its labels against its logits: gather and one_hot would silently use the first rows
of a longer batch or stretch one label over every row, and float labels would be truncated."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from slimlab.losses import (
    TruncatedGCE,
    bootstrap_hard_loss,
    bootstrap_soft_loss,
    forward_loss,
    gce_loss,
    gce_trunc_loss,
    mae_loss,
    nce_loss,
    nce_rce_loss,
    pencil_loss,
    rce_loss,
    sce_loss,
)

LOSSES = [gce_loss, gce_trunc_loss, mae_loss, nce_loss, nce_rce_loss, bootstrap_soft_loss, bootstrap_hard_loss,
          rce_loss, sce_loss, lambda lg, y, **kw: forward_loss(lg, y, torch.eye(3), **kw)]


@pytest.mark.parametrize("loss", LOSSES)
def test_a_label_batch_of_another_length_is_refused(loss):
    logits = torch.randn(4, 3)
    for y in (torch.tensor([1, 2]), torch.tensor([1]), torch.tensor([[0, 1, 2, 0]])):
        with pytest.raises(ValueError, match="labels must be \\[N\\] with N = 4"):
            loss(logits, y)


@pytest.mark.parametrize("loss", LOSSES)
def test_lists_numpy_and_any_integer_type_give_the_same_loss_and_floats_are_refused(loss):
    logits, y = torch.randn(4, 3), [0, 2, 1, 2]
    want = loss(logits, torch.tensor(y), reduction="none")
    for form in (y, np.array(y), np.array(y, np.int32), torch.tensor(y, dtype=torch.uint8)):
        assert torch.equal(loss(logits, form, reduction="none"), want)
    with pytest.raises(ValueError, match="integer class indices, got torch.float"):
        loss(logits, torch.tensor([0.0, 1.7, 1.0, 2.0]))
    for bad in ([0, 3, 1, 2], [0, -1, 1, 2]):
        with pytest.raises(ValueError, match="labels must lie in \\[0, 3\\)"):
            loss(logits, bad)
    with pytest.raises(ValueError, match="logits must be \\[N, K\\]"):
        loss(logits[0], [0, 1, 2])


def test_the_check_leaves_the_values_of_the_definitions():
    """GCE on a case computed by hand: (1 - p_y^q) / q."""
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
    p = F.softmax(logits, 1)
    want = ((1 - p[0, 0] ** 0.7) / 0.7 + (1 - p[1, 2] ** 0.7) / 0.7) / 2
    assert torch.allclose(gce_loss(logits, np.array([0, 2])), want)


def test_pencil_loss_checks_its_label_variable_and_labels():
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match="y_tilde must have the logits' shape"):
        pencil_loss(logits, torch.randn(2, 3), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="labels must be \\[N\\]"):
        pencil_loss(logits, torch.randn(4, 3), torch.tensor([0, 1]))


def test_truncated_gce_in_your_own_loop_says_once_when_it_was_never_given_weights():
    obj, logits = TruncatedGCE(epochs=12), torch.randn(4, 10)
    batch = {"target": torch.tensor([0, 1, 2, 3]), "index": torch.arange(4)}
    with pytest.warns(UserWarning) as seen:  # epochs 0-3 are the plain-L_q warm-up: nothing to say there
        for epoch in range(6):
            obj.loss(logits, batch, epoch)
    assert len(seen) == 1 and "at epoch 4" in str(seen[0].message) and "on_train_predictions" in str(seen[0].message)


def test_pencil_objective_checks_its_noisy_labels_and_each_batchs():
    """Found by a user-scenario review: float labels 4.7 were truncated to class 4 at construction and in each
    batch, and a label past the class count was a bare torch error."""
    from slimlab.losses import PencilObjective

    with pytest.raises(ValueError, match="labels must be integer class indices, got torch.float64"):
        PencilObjective(np.array([0.0, 1.7, 4.7]), 5, 4)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\) for 5 classes, got 0..5"):
        PencilObjective(np.array([0, 1, 5]), 5, 4)
    obj = PencilObjective(np.array([0, 1, 4]), 5, 4)
    batch = {"index": torch.arange(3), "target": torch.tensor([0.9, 1.9, 3.99])}
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        obj.loss(torch.randn(3, 5), batch, 0)
    batch["target"] = torch.tensor([0, 1, 4])
    assert torch.isfinite(obj.loss(torch.randn(3, 5), batch, 0))


@pytest.mark.parametrize("T,match", [(torch.ones(3, 3), "each row summing to 1"), (torch.eye(2), r"\[3, 3\]"),
                                     (-torch.eye(3), "non-negative")])
def test_forward_loss_checks_its_transition_matrix(T, match):
    """An all-ones T gave a loss of -7e-9 whatever the prediction (nothing learns); a wrong size a bare matmul
    error."""
    with pytest.raises(ValueError, match=match):
        forward_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), T)
    T = np.array([[0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.0, 0.3, 0.7]])
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    want = -torch.log((logits.softmax(1) @ torch.as_tensor(T, dtype=torch.float32))[torch.arange(4), y]).mean()
    assert torch.allclose(forward_loss(logits, y, T), want, atol=1e-6)
