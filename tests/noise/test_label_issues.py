"""Label-issue scoring is a pure function of (labels, pred_probs), checked by hand."""

import numpy as np
import pytest
import torch

from slimlab.noise.label_issues import flag_quality, pencil_probs, score_label_issues


def test_scores_by_hand():
    labels = torch.tensor([0, 1, 2, 1])
    probs = torch.tensor([[0.9, 0.05, 0.05],   # agrees: suspicion 0.1
                          [0.7, 0.2, 0.1],     # says 0, given 1: suspicion 0.8, flagged
                          [0.1, 0.1, 0.8],     # agrees: suspicion 0.2
                          [0.3, 0.3, 0.4]])    # says 2, given 1: suspicion 0.7, flagged
    li = score_label_issues(labels, probs)
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
        score_label_issues(torch.tensor([0, 1]), torch.rand(3, 2))
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


def test_find_label_issues_on_arrays_returns_their_kind_ranks_and_checks_its_input():
    from slimlab.noise import find_label_issues

    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[.9, .05, .05], [.8, .1, .1], [.7, .2, .1], [.1, .8, .1], [.1, .1, .8], [.2, .1, .7]])
    mask = find_label_issues(labels, probs, method="argmax")
    assert isinstance(mask, np.ndarray) and mask.tolist() == [False, False, True, False, False, False]
    t = find_label_issues(torch.as_tensor(labels), torch.as_tensor(probs), method="argmax")
    assert isinstance(t, torch.Tensor) and t.tolist() == mask.tolist()
    # confident learning does not flag sample 2: it reaches no class's threshold (t = mean p_j over the samples
    # labelled j: t0 = .85, t1 = .5, t2 = .75; its .7, .2, .1 are below them), so the confident joint omits it
    assert find_label_issues(labels, probs).tolist() == [False] * 6
    # ranked: flagged indices, most suspicious (lowest p(label)) first; here two flips, by hand
    probs2 = probs.copy()
    probs2[5] = [.6, .1, .3]  # label 2, p = .3; sample 2 (label 1, p = .2) is more suspicious
    assert find_label_issues(labels, probs2, method="argmax", return_ranked=True).tolist() == [2, 5]
    bad = [((labels[:5], probs), "N = 5"), ((labels + 1, probs), r"lie in \[0, 3\)"),
           ((labels.astype(float), probs), "1-D integer"), ((labels, np.log(probs)), "logits")]
    for (y, p), needle in bad:
        with pytest.raises(ValueError, match=needle):
            find_label_issues(y, p)
    with pytest.raises(ValueError, match="unknown method 'kfodl'"):
        find_label_issues(labels, probs, method="kfodl")


def test_find_label_issues_and_corrupt_take_strided_and_unsigned_labels():
    from slimlab.noise import corrupt, find_label_issues

    labels = (np.arange(6) % 3)[::-1]  # a negative-stride view
    probs = np.eye(3)[labels] * 0.8 + 0.2 / 3
    assert find_label_issues(labels.astype(np.uint64), probs, method="argmax").tolist() == [False] * 6
    assert corrupt(labels, "symmetric", 0.5, 3, seed=1)[0].tolist() == corrupt(
        labels.copy().astype(np.uint64), "symmetric", 0.5, 3, seed=1)[0].tolist()


def test_find_label_issues_takes_cleanlabs_keywords_and_ranks_as_cleanlab():
    """filter_by, frac_noise, min_examples_per_class and return_indices_ranked_by as cleanlab takes them: the same
    indices in the same order, on a random problem without ties; misuse is a one-line ValueError or a warning."""
    cleanlab_filter = pytest.importorskip("cleanlab.filter")
    from slimlab.noise import find_label_issues

    rng = np.random.default_rng(7)
    n, k = 400, 5
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < 0.3, rng.integers(0, k, n), true)
    z = rng.normal(size=(n, k)) + 2.0 * np.eye(k)[true]
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    for filter_by, frac in (("both", 0.8), ("prune_by_class", 0.8), ("low_normalized_margin", 1.0)):
        for rank in ("self_confidence", "normalized_margin"):
            theirs = cleanlab_filter.find_label_issues(labels, probs, filter_by=filter_by, frac_noise=frac,
                                                       return_indices_ranked_by=rank, n_jobs=1)
            ours = find_label_issues(labels, probs, filter_by=filter_by, frac_noise=frac, return_indices_ranked_by=rank)
            assert len(ours) > 20 and ours.tolist() == theirs.tolist(), (filter_by, rank)
    from cleanlab.count import compute_confident_joint

    raw = compute_confident_joint(labels, probs, calibrate=False)  # a joint of the user's own: used as given
    for filter_by in ("prune_by_noise_rate", "prune_by_class"):
        theirs = cleanlab_filter.find_label_issues(labels, probs, filter_by=filter_by, confident_joint=raw, n_jobs=1)
        ours = find_label_issues(labels, probs, filter_by=filter_by, confident_joint=raw, n_jobs=1, verbose=False)
        assert ours.tolist() == theirs.tolist() and ours.tolist() != find_label_issues(labels, probs,
                                                                                       filter_by=filter_by).tolist()
    t = find_label_issues(torch.as_tensor(labels), torch.as_tensor(probs), filter_by="both", return_ranked=True)
    assert isinstance(t, torch.Tensor) and t.tolist() == find_label_issues(labels, probs, filter_by="both",
                                                                           return_ranked=True).tolist()
    for bad, match in [({"method": "argmax", "filter_by": "both"}, "takes none of them"),
                       ({"filter_by": "both", "frac_noise": 0}, "frac_noise must be"),
                       ({"min_examples_per_class": -1}, "min_examples_per_class must be"),
                       ({"return_indices_ranked_by": "entropy"}, "unknown return_indices_ranked_by"),
                       ({"confident_joint": np.ones((3, 3))}, "confident_joint must be")]:
        with pytest.raises(ValueError, match=match):
            find_label_issues(labels, probs, **bad)
    with pytest.warns(UserWarning, match="ignores them"):
        find_label_issues(labels, probs, filter_by="confident_learning", frac_noise=0.5)
