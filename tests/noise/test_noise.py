import math

import numpy as np
import pytest
import torch

from slimlab.errors import SlimlabError
from slimlab.noise import CIFAR10_ASYM, cifar100_mapping, corrupt, intended_matrix, transition_matrix

N, K = 20000, 10
Y = torch.arange(N) % K


def binom_tol(p: float, n: int) -> float:
    return 4 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-9


@pytest.mark.parametrize("exclude_true", [False, True])
def test_symmetric_rates_and_matrix(exclude_true):
    for mode in ("exact", "bernoulli"):
        noisy, t = corrupt(Y, "symmetric", 0.4, K, seed=1, mode=mode, exclude_true=exclude_true)
        target = intended_matrix("symmetric", 0.4, K, exclude_true=exclude_true)
        n_class = N // K
        assert np.abs(t - target).max() < binom_tol(0.06, n_class), mode
        changed = (noisy != Y).float().mean().item()
        expect = 0.4 if exclude_true else 0.4 * (K - 1) / K
        if mode == "exact" and exclude_true:
            assert (noisy != Y).sum().item() == int(0.4 * N)  # exactly int(r n) labels changed
        assert abs(changed - expect) < binom_tol(expect, N)
        assert np.allclose(t.sum(1), 1)


def test_exact_mode_resamples_exactly_int_rn_labels():
    noisy, _ = corrupt(Y, "pairflip", 0.3, K, seed=0, mode="exact")
    assert (noisy != Y).sum().item() == int(0.3 * N)
    assert torch.equal(noisy[noisy != Y], (Y[noisy != Y] + 1) % K)


def test_asymmetric_mapping_by_class_names():
    """CIFAR-10's map applies to CIFAR-10's classes only; another 10-class data set needs --noise-mapping."""
    from slimlab.errors import SlimlabError
    from slimlab.noise import CIFAR10_CLASSES, CIFAR100_CLASSES, mapping_for

    assert mapping_for(CIFAR10_CLASSES) == CIFAR10_ASYM
    assert mapping_for(CIFAR100_CLASSES) == cifar100_mapping() and len(set(CIFAR100_CLASSES)) == 100
    assert mapping_for(CIFAR100_CLASSES, cifar100="superclass") == cifar100_mapping("superclass")
    digits = [str(i) for i in range(10)]
    with pytest.raises(SlimlabError, match="no published mapping for these classes"):
        mapping_for(digits)
    assert mapping_for(digits, {"7": "1", 3: 8}) == {7: 1, 3: 8}
    with pytest.raises(SlimlabError, match="unknown class 'seven'"):
        mapping_for(digits, {"seven": "1"})
    with pytest.raises(SlimlabError, match="needs a mapping"):
        corrupt(Y, "asymmetric", 0.4, K)


def test_asymmetric_cifar10_mapping():
    noisy, t = corrupt(Y, "asymmetric", 0.4, K, seed=2, mapping=CIFAR10_ASYM)
    for i in range(K):
        if i in CIFAR10_ASYM:
            j = CIFAR10_ASYM[i]
            assert t[i, j] == pytest.approx(0.4, abs=1e-3) and t[i, i] == pytest.approx(0.6, abs=1e-3)
        else:
            assert t[i, i] == 1.0
    assert CIFAR10_ASYM == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}  # truck->automobile, bird->airplane, deer->horse, cat<->dog


def test_cifar100_blocks_of_five_by_hand_is_the_default():
    m = cifar100_mapping()
    assert m[0] == 1 and m[3] == 4 and m[4] == 0 and m[5] == 6 and m[9] == 5 and m[99] == 95
    assert sorted(m.values()) == list(range(100)) and all(i // 5 == j // 5 and i != j for i, j in m.items())
    from slimlab.errors import SlimlabError

    with pytest.raises(SlimlabError, match="unknown CIFAR-100 noise convention"):
        cifar100_mapping("coarse")


def test_cifar100_next_class_within_superclass():
    m = cifar100_mapping("superclass")
    from slimlab.noise.corrupt import CIFAR100_COARSE

    assert sorted(np.bincount(CIFAR100_COARSE).tolist()) == [5] * 20  # 20 superclasses of 5
    assert sorted(m) == list(range(100)) and sorted(m.values()) == list(range(100))
    for i, j in m.items():
        assert CIFAR100_COARSE[i] == CIFAR100_COARSE[j] and i != j
    # e.g. superclass 4 (fish-like? here: fruit and vegetables is 0) holds 0 (apple): apple -> the next fine class in it
    group0 = [i for i, c in enumerate(CIFAR100_COARSE) if c == CIFAR100_COARSE[0]]
    assert m[group0[0]] == group0[1] and m[group0[-1]] == group0[0]


def test_user_matrix_and_determinism():
    t = np.full((3, 3), 0.1) + np.eye(3) * 0.7
    y = torch.arange(3000) % 3
    a, ta = corrupt(y, "matrix", 0.0, 3, seed=5, matrix=t)
    b, _ = corrupt(y, "matrix", 0.0, 3, seed=5, matrix=t)
    assert torch.equal(a, b)
    assert np.allclose(ta, t, atol=1e-3)  # exact mode: T_ij n_i per cell, rounded by largest remainder
    c, _ = corrupt(y, "matrix", 0.0, 3, seed=6, matrix=t)
    assert not torch.equal(a, c)
    with pytest.raises(SlimlabError, match="rows summing to 1"):
        corrupt(y, "matrix", 0.0, 3, matrix=np.ones((3, 3)))


def test_transition_matrix_by_hand():
    clean = torch.tensor([0, 0, 1, 1])
    noisy = torch.tensor([0, 1, 1, 1])
    assert transition_matrix(clean, noisy, 2).tolist() == [[0.5, 0.5], [0.0, 1.0]]


def test_bad_inputs():
    with pytest.raises(SlimlabError, match="rate"):
        corrupt(Y, "symmetric", 1.5, K)
    with pytest.raises(SlimlabError, match="unknown noise kind"):
        corrupt(Y, "gaussian", 0.2, K)


def test_corrupt_returns_the_kind_it_was_given_and_refuses_bad_labels():
    y = np.arange(200) % 4
    noisy, _ = corrupt(y, "symmetric", 0.5, 4, seed=3)
    as_tensor, _ = corrupt(torch.as_tensor(y), "symmetric", 0.5, 4, seed=3)
    assert isinstance(noisy, np.ndarray) and isinstance(as_tensor, torch.Tensor)
    assert noisy.tolist() == as_tensor.tolist()  # the same draw either way
    assert corrupt(y.astype(np.int32), "symmetric", 0.5, 4, seed=3)[0].tolist() == noisy.tolist()
    for bad, needle in ((np.arange(10) % 5, r"lie in \[0, 4\), got 0..4"), (np.eye(4, dtype=int), "1-D integer"),
                        (np.array([0.0, 1.0]), "1-D integer"), (np.array([-1, 0]), "got -1..0")):
        with pytest.raises(SlimlabError, match=needle):
            corrupt(bad, "symmetric", 0.5, 4)
    with pytest.raises(SlimlabError, match="at least 2"):
        corrupt(np.zeros(3, dtype=int), "symmetric", 0.5, 1)


def test_library_mistakes_are_one_line_and_labels_come_back_int64():
    y = np.arange(20, dtype=np.int32) % 10
    for mapping in ({"cat": "dog"}, {3: 12}, {True: 1}):
        with pytest.raises(SlimlabError, match="mapping takes class indices in \\[0, 10\\)"):
            corrupt(y, "asymmetric", 0.4, num_classes=10, mapping=mapping)
    with pytest.raises(SlimlabError, match="noise rate must be a number in \\[0, 1\\], got None"):
        corrupt(y, "symmetric", None, num_classes=10)
    noisy, t = corrupt(y, "matrix", None, num_classes=10, matrix=np.eye(10))  # a matrix needs no rate
    assert noisy.dtype == np.int64 and (noisy == y).all() and np.allclose(t, np.eye(10))
    noisy, _ = corrupt(torch.as_tensor(y, dtype=torch.uint8), "symmetric", np.float32(0.5), num_classes=300)
    assert noisy.dtype == torch.int64 and int(noisy.max()) > 255  # int64 always: a uint8 input would wrap
    from slimlab.noise import intended_matrix

    m = intended_matrix("asymmetric", 0.4, 10, mapping={3: 5})  # once broken by _need's new argument
    assert m[3, 5] == pytest.approx(0.4) and m[0, 0] == 1


def test_a_zero_dimensional_array_or_tensor_rate_is_a_number():
    from slimlab.noise import corrupt

    y = torch.arange(100) % 10
    a = corrupt(y, "symmetric", 0.4, 10, seed=3)[0]
    for rate in (np.float64(0.4), np.array(0.4), torch.tensor(0.4, dtype=torch.float64)):
        assert torch.equal(corrupt(y, "symmetric", rate, 10, seed=3)[0], a)


def test_a_matrix_is_realised_by_largest_remainder_so_the_asked_noise_rate_holds():
    """T = 0.5 I + 0.5/9 off the diagonal, 100 images a class: 5.56 images per off-diagonal cell. Rounding each
    down would leave 55 images on the true class (45% noise); the remainders go to 5 of the 9 cells instead."""
    k = 10
    t = np.full((k, k), 0.5 / 9)
    np.fill_diagonal(t, 0.5)
    y = np.repeat(np.arange(k), 100)
    noisy, realised = corrupt(y, "matrix", None, k, seed=0, matrix=t)
    counts = np.rint(realised * 100).astype(int)
    assert (noisy != y).mean() == 0.5 and (np.diag(counts) == 50).all()
    off = counts[~np.eye(k, dtype=bool)].reshape(k, k - 1)
    assert ((off == 5) | (off == 6)).all() and (off.sum(1) == 50).all() and ((off == 6).sum(1) == 5).all()
    assert len({tuple(np.flatnonzero(row == 6)) for row in off}) > 1  # ties broken at random, not by class index


def test_num_classes_that_is_not_an_integer_is_one_line():
    for bad in (None, 2.5, True, 1):
        with pytest.raises(SlimlabError, match="num_classes must be an integer of at least 2"):
            corrupt(np.array([0, 1]), "symmetric", 0.4, bad)
