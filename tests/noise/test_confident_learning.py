"""Confident learning against a case worked by hand and against cleanlab itself (the reference)."""

import numpy as np
import pytest

from slimlab.noise.confident_learning import (
    confident_joint,
    confident_thresholds,
    find_label_issues,
    round_preserving_sum,
)

LABELS = np.array([0, 0, 0, 1, 1, 2])
PROBS = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1],  # the third is a 1 labelled 0
                  [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])


def test_a_case_worked_by_hand():
    # t = (mean(.9, .8, .1), mean(.8, .7), .8) = (.6, .75, .8); x4 reaches no threshold and is not counted
    assert np.allclose(confident_thresholds(LABELS, PROBS), [0.6, 0.75, 0.8])
    assert confident_joint(LABELS, PROBS, calibrate=False).tolist() == [[2, 1, 0], [0, 1, 0], [0, 0, 1]]
    # calibrated: row 1 (one counted example) scales to its 2 labels
    assert confident_joint(LABELS, PROBS).tolist() == [[2, 1, 0], [0, 2, 0], [0, 0, 1]]
    # C[0][1] = 1: of the examples labelled 0, the one with the largest p1 - p0 margin is flagged
    assert find_label_issues(LABELS, PROBS).tolist() == [False, False, True, False, False, False]


def test_rounding_keeps_the_row_total():
    r = round_preserving_sum(np.array([0.4, 0.4, 0.2]))  # each rounds to 0, the total to 1: a 0.4 gets it
    assert r.sum() == 1 and r[2] == 0
    r = round_preserving_sum(np.array([1.4, 1.4, 1.2]))  # 4.0 in all; each rounds down to 1
    assert r.sum() == 4 and sorted(r.tolist()) == [1, 1, 2]


@pytest.mark.parametrize("seed,k,n,noise", [(0, 3, 300, 0.2), (1, 10, 2000, 0.4), (2, 5, 800, 0.6)])
def test_agrees_with_cleanlab(seed, k, n, noise):
    cleanlab_filter = pytest.importorskip("cleanlab.filter")  # installed by the dev extra (pyproject.toml)
    from cleanlab.count import compute_confident_joint

    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < noise, rng.integers(0, k, n), true)
    logits = rng.normal(0, 1, (n, k)) + 2.5 * np.eye(k)[true]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.array_equal(confident_joint(labels, probs), compute_confident_joint(labels, probs))
    ours = find_label_issues(labels, probs)
    theirs = cleanlab_filter.find_label_issues(labels, probs, n_jobs=1)
    assert ours.sum() > 0.3 * (labels != true).sum()
    assert np.array_equal(ours, theirs)


def _random_case(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 8)), int(rng.integers(10, 200))
    labels = rng.integers(0, k, n)
    z = rng.normal(size=(n, k)) * rng.uniform(0.5, 4)
    z[np.arange(n), labels] += rng.uniform(0, 3)
    return labels, np.exp(z) / np.exp(z).sum(1, keepdims=True)


def test_a_class_whose_calibrated_diagonal_is_zero_keeps_one_example_as_cleanlab():
    """Seed 85: 18 examples, 6 classes; a row of the calibrated joint has C[i][i] = 0. cleanlab raises it to 1 and
    takes that from the row's other counts (``min_examples_per_class``); before, slimlab flagged 9 against 7."""
    cleanlab_filter = pytest.importorskip("cleanlab.filter")
    labels, probs = _random_case(85)
    assert (np.diagonal(confident_joint(labels, probs)) == 0).any()
    theirs = cleanlab_filter.find_label_issues(labels, probs, n_jobs=1)
    assert np.array_equal(find_label_issues(labels, probs), theirs) and theirs.sum() == 7


def test_small_random_cases_agree_with_cleanlab_exactly():
    """1,000 small random problems (2-7 classes, 10-200 examples, any confidence): the masks are equal. Before
    2026-12-03, 7 of them were 1-5 flags apart: cleanlab truncates the counts left after keeping one example per
    class (0.75 flags nobody; seed 953: five flags), and sums its column-major joint in another order (seeds 82, 178,
    183, 682: a rounding near-tie)."""
    cleanlab_filter = pytest.importorskip("cleanlab.filter")
    import warnings

    off = []
    for seed in range(1000):
        labels, probs = _random_case(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cleanlab: "too few examples" in a class
            theirs = cleanlab_filter.find_label_issues(labels, probs, n_jobs=1)
        ours = find_label_issues(labels, probs)
        if not np.array_equal(ours, theirs):
            off.append((seed, int((ours != theirs).sum())))
    assert off == []


@pytest.mark.parametrize("filter_by", ["prune_by_noise_rate", "prune_by_class", "both", "confident_learning",
                                       "predicted_neq_given", "low_self_confidence", "low_normalized_margin"])
def test_every_filter_by_rule_agrees_with_cleanlab(filter_by):
    """cleanlab's seven filter_by rules, with frac_noise and min_examples_per_class where they act, on 150 small
    random problems each: the masks are equal."""
    cleanlab_filter = pytest.importorskip("cleanlab.filter")
    import warnings

    settings = [(1.0, 1), (0.5, 1), (1.0, 4), (0.3, 0)] if filter_by in ("prune_by_noise_rate", "prune_by_class",
                                                                        "both") else [(1.0, 1)]
    off, flagged = [], 0
    for seed in range(150):
        labels, probs = _random_case(1000 + seed)
        for frac, n in settings:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = cleanlab_filter.find_label_issues(labels, probs, filter_by=filter_by, frac_noise=frac,
                                                           min_examples_per_class=n, n_jobs=1)
            ours = find_label_issues(labels, probs, filter_by, frac_noise=frac, min_examples_per_class=n)
            flagged += int(ours.sum())
            if not np.array_equal(ours, theirs):
                off.append((seed, frac, n, int((ours != theirs).sum())))
    assert off == [] and flagged > 150  # the rules flag something on these problems


def test_the_rules_by_hand():
    """The module's case (t = (.6, .75, .8)): x2 (labelled 0, p = (.1, .8, .1)) is the one off-diagonal count; by class,
    class 0 keeps C[0][0] = 2 of its 3 and drops the smallest p0 (x2); the scores rank x2 lowest."""
    from slimlab.noise.confident_learning import normalized_margin, off_diagonal, self_confidence

    assert off_diagonal(LABELS, PROBS).tolist() == [False, False, True, False, False, False]
    for rule in ("prune_by_class", "both", "confident_learning", "predicted_neq_given", "low_self_confidence",
                 "low_normalized_margin"):
        assert find_label_issues(LABELS, PROBS, rule).tolist() == [False, False, True, False, False, False], rule
    assert np.allclose(self_confidence(LABELS, PROBS), [0.9, 0.8, 0.1, 0.8, 0.7, 0.8])
    assert np.allclose(normalized_margin(LABELS, PROBS), [0.925, 0.85, 0.15, 0.85, 0.75, 0.85])
    with pytest.raises(ValueError, match="unknown filter_by"):
        find_label_issues(LABELS, PROBS, "prune_by_nosie_rate")


def _edge_case(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Small problems at the edges cleanlab handles in its own way: two classes, a class nobody is labelled, a class
    of one example, probabilities quantised to quarters (exact ties everywhere), float32, and rows that are uniform."""
    rng = np.random.default_rng(seed)
    k, n = (2 if kind == "two_classes" else int(rng.integers(3, 7))), int(rng.integers(6, 80))
    labels = rng.integers(0, k, n)
    if kind == "absent_class":
        labels = np.where(labels == k - 1, 0, labels)
    if kind == "one_example_class":
        labels = rng.integers(0, k - 1, n)
        labels[0] = k - 1
    z = rng.normal(size=(n, k)) * rng.uniform(0.5, 4)
    z[np.arange(n), labels] += rng.uniform(0, 3)
    probs = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    if kind == "ties":
        probs = np.round(probs * 4) / 4 + 1e-9
        probs /= probs.sum(1, keepdims=True)
    if kind == "float32":
        probs = probs.astype(np.float32)
    if kind == "uniform_rows":
        probs[: n // 2] = 1.0 / k
    return labels, probs


@pytest.mark.parametrize("kind", ["two_classes", "absent_class", "one_example_class", "ties", "float32",
                                  "uniform_rows"])
def test_edge_cases_agree_with_cleanlab_under_every_rule(kind):
    """40 problems of each edge kind under all seven rules: the masks are equal (2,100 problems were checked once
    by a script, 2026-12-04, none apart)."""
    cleanlab_filter = pytest.importorskip("cleanlab.filter")
    import warnings

    from slimlab.noise.confident_learning import FILTERS

    off, flagged = [], 0
    for seed in range(40):
        labels, probs = _edge_case(kind, seed)
        for rule in FILTERS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = cleanlab_filter.find_label_issues(labels, probs, filter_by=rule, n_jobs=1)
            ours = find_label_issues(labels, probs, rule)
            flagged += int(ours.sum())
            if not np.array_equal(ours, theirs):
                off.append((seed, rule))
    assert off == [] and flagged > 40
