"""Label-issue scoring is a pure function of (labels, pred_probs), checked by hand."""

import pytest
import torch

from slimlab.noise.label_issues import find_label_issues, flag_quality, pencil_probs


def test_scores_by_hand():
    labels = torch.tensor([0, 1, 2, 1])
    probs = torch.tensor([[0.9, 0.05, 0.05],   # agrees: suspicion 0.1
                          [0.7, 0.2, 0.1],     # says 0, given 1: suspicion 0.8, flagged
                          [0.1, 0.1, 0.8],     # agrees: suspicion 0.2
                          [0.3, 0.3, 0.4]])    # says 2, given 1: suspicion 0.7, flagged
    li = find_label_issues(labels, probs)
    assert li.flagged.tolist() == [False, True, False, True]
    assert li.corrected.tolist() == [0, 0, 2, 2]
    assert torch.allclose(li.suspicion, torch.tensor([0.1, 0.8, 0.2, 0.7]))
    assert li.order.tolist() == [1, 3, 2, 0]
    assert torch.allclose(li.confidence, torch.tensor([0.9, 0.7, 0.8, 0.4]))


def test_flag_quality_by_hand():
    flagged = torch.tensor([True, True, False, True, False])
    flipped = torch.tensor([True, False, False, True, True])
    q = flag_quality(flagged, flipped)
    assert q == {"true_flips": 3, "precision": 2 / 3, "recall": 2 / 3}


def test_shape_mismatch_and_pencil_probs():
    with pytest.raises(ValueError):
        find_label_issues(torch.tensor([0, 1]), torch.rand(3, 2))
    yt = torch.tensor([[10.0, 0.0], [0.0, 0.0]])
    p = pencil_probs({"objective": {"y_tilde": yt}})
    assert torch.allclose(p, yt.softmax(1)) and pencil_probs({}) is None


def test_precision_recall_curve_by_hand():
    from slimlab.noise.label_issues import f1, precision_recall_curve

    suspicion = torch.tensor([0.9, 0.1, 0.8, 0.3])  # ranked: 0, 2, 3, 1
    flipped = torch.tensor([True, False, False, True])
    c = precision_recall_curve(suspicion, flipped)
    assert c["precision"].tolist() == [1.0, 0.5, 2 / 3, 0.5]
    assert c["recall"].tolist() == [0.5, 0.5, 1.0, 1.0]
    assert abs(c["average_precision"] - (1.0 + 2 / 3) / 2) < 1e-12  # precision at each true flip, averaged
    assert f1(0.5, 1.0) == 2 * 0.5 / 1.5 and f1(0.0, 0.0) == 0.0


def test_each_detector_flags_by_its_own_rule():
    from slimlab.noise.label_issues import flag_rule

    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1],
                          [0.1, 0.8, 0.1], [0.45, 0.5, 0.05], [0.1, 0.1, 0.8]])
    assert flag_rule("model", labels, probs).tolist() == [False, False, True, False, False, False]
    assert flag_rule("kfold", labels, probs).tolist() == [False, False, True, False, False, False]
    # small-loss: the calibrated confident joint puts 1 of 6 off the diagonal -> the one largest loss is flagged
    assert flag_rule("small-loss", labels, probs).tolist() == [False, False, True, False, False, False]
