"""Synthetic label noise: ``corrupt(labels, kind, rate, num_classes, seed)``.

Kinds (T[i, j] = P(noisy label j | true label i)):
- ``symmetric``: a corrupted label is drawn uniformly from all K classes (PENCIL's script; it can
  land on the true class, so T = (1 - r) I + r/K 11^T) or, with ``exclude_true``, from the other
  K - 1 classes (Co-teaching's; T = (1 - r) I + r/(K-1) (11^T - I)). Default: all classes.
- ``asymmetric``: class-dependent flips of the classes that have a partner, with probability r.
  The mapping is keyed by class *names* (:func:`mapping_for`): CIFAR-10's truck->automobile,
  bird->airplane, deer->horse, cat<->dog (Patrini et al. 2017) for a data set whose classes are
  CIFAR-10's; for CIFAR-100's, the next class within consecutive blocks of 5 (``blocks``, the reference
  code's convention, which published numbers use; the default) or within the true superclass (``superclass``),
  see ``--noise-convention``; any other data
  set needs a user mapping {true class: noisy class} (``--noise-mapping``), never a guess from the
  number of classes.
- ``pairflip``: i -> i+1 (mod K) with probability r (Han et al. 2018).
- ``matrix``: a user transition matrix ``T`` (rows sum to 1).

Modes: ``exact`` corrupts exactly ``int(r * n)`` samples, chosen at random (over all samples for
symmetric/pairflip, ``int(r * n_c)`` per flipped class c for asymmetric; for a matrix,
``T[i, j] * n_i`` samples of class i get label j, rounded by largest remainder so that the n_i add up), as
DivideMix does; ``bernoulli``
corrupts each sample independently with probability r. With symmetric noise drawn from all
classes, about r/K of the corrupted samples keep their label. Deterministic under ``seed``.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch

from slimlab.errors import SlimlabError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_ASYM_NAMES = {"truck": "automobile", "bird": "airplane", "deer": "horse", "cat": "dog", "dog": "cat"}
CIFAR10_ASYM = {CIFAR10_CLASSES.index(a): CIFAR10_CLASSES.index(b) for a, b in CIFAR10_ASYM_NAMES.items()}
# torchvision's CIFAR-100 fine classes, in label order
CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger "
    "tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm").split()
# CIFAR-100 fine label -> superclass (coarse label), in torchvision's fine-label order.
CIFAR100_COARSE = [4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15, 3,
                   15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0,
                   17, 4, 18, 17, 10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13, 16, 19, 2,
                   4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13]


def cifar100_mapping(convention: str = "blocks") -> dict[int, int]:
    """CIFAR-100's asymmetric flips. ``blocks`` (the default, the reference code's convention that published
    numbers use): each label to the next one, cyclically, within consecutive blocks of 5 labels (0->1, ...,
    4->0, 5->6, ...). ``superclass``: each class to the next class, by label, within its true superclass."""
    if convention == "blocks":
        return {i: 5 * (i // 5) + (i % 5 + 1) % 5 for i in range(100)}
    if convention != "superclass":
        raise SlimlabError(f"unknown CIFAR-100 noise convention '{convention}' (blocks, superclass)")
    groups: dict[int, list[int]] = {}
    for fine, coarse in enumerate(CIFAR100_COARSE):
        groups.setdefault(coarse, []).append(fine)
    return {g[i]: g[(i + 1) % len(g)] for g in groups.values() for i in range(len(g))}


def mapping_for(classes: list[str], given: dict | None = None, cifar100: str = "blocks") -> dict[int, int]:
    """The asymmetric-noise mapping {true label: noisy label} of a data set with these class names.

    ``given`` maps class names (or label numbers) to class names (or numbers). Without it, CIFAR-10's and
    CIFAR-100's published mappings apply to data sets with exactly their classes; any other one is an error."""
    index = {c: i for i, c in enumerate(classes)}

    def label(c) -> int:
        if isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(classes):
            return c
        if str(c) in index:
            return index[str(c)]
        raise SlimlabError(f"--noise-mapping: unknown class {c!r} (classes: {', '.join(classes[:12])}"
                           f"{', ...' if len(classes) > 12 else ''})")

    if given:
        return {label(a): label(b) for a, b in given.items()}
    if list(classes) == CIFAR10_CLASSES:
        return dict(CIFAR10_ASYM)
    if list(classes) == CIFAR100_CLASSES:
        return cifar100_mapping(cifar100)
    raise SlimlabError("asymmetric noise has no published mapping for these classes "
                       f"({', '.join(classes[:6])}{', ...' if len(classes) > 6 else ''}): give --noise-mapping "
                       "'{true_class: noisy_class, ...}'")


def intended_matrix(kind: str, rate: float, num_classes: int, exclude_true: bool = False,
                    mapping: dict[int, int] | None = None) -> np.ndarray:
    """The transition matrix the noise process aims at (the realised one is returned by ``corrupt``)."""
    k = num_classes
    t = np.eye(k) * (1 - rate)
    if kind == "symmetric":
        if exclude_true:
            t += (np.ones((k, k)) - np.eye(k)) * rate / (k - 1)
        else:
            t += np.ones((k, k)) * rate / k
    elif kind == "pairflip":
        for i in range(k):
            t[i, (i + 1) % k] += rate
    elif kind == "asymmetric":
        t = np.eye(k)
        for i, j in _need(mapping, k).items():
            t[i, i], t[i, j] = 1 - rate, rate
    else:
        raise SlimlabError(f"unknown noise kind '{kind}'")
    return t


def _need(mapping: dict[int, int] | None, k: int) -> dict[int, int]:
    if not mapping:
        raise SlimlabError("asymmetric noise needs a mapping {true label: noisy label} (see mapping_for)")

    def index(c) -> bool:
        return isinstance(c, (int, np.integer)) and not isinstance(c, bool) and 0 <= c < k

    bad = next(((i, j) for i, j in mapping.items() if not (index(i) and index(j))), None)
    if bad is not None:
        raise SlimlabError(f"asymmetric noise's mapping takes class indices in [0, {k}), got {bad[0]!r}: {bad[1]!r} "
                           "(class names: mapping_for(class_names, {name: name}) turns them into indices)")
    return {int(i): int(j) for i, j in mapping.items()}


def corrupt(labels: torch.Tensor | np.ndarray, kind: str, rate: float | None, num_classes: int, seed: int = 0,
            mode: str = "exact", exclude_true: bool = False, mapping: dict[int, int] | None = None,
            matrix: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Return (noisy labels, realised transition matrix T[i, j] = fraction of class i labelled j).

    ``labels``: [N] integer labels in [0, num_classes), a numpy array or a tensor (any device); the noisy labels
    come back as the same kind, int64 (numpy in, numpy out; tensors on the input's device). ``rate``:
    the fraction to flip (of every class for ``symmetric`` and ``pairflip``, of each mapped class for
    ``asymmetric``); ``matrix`` takes ``matrix`` (rows summing to 1) instead, and ``rate`` may be None."""
    noisy, t = _corrupt(label_tensor(labels, num_classes), kind, rate, num_classes, seed, mode, exclude_true, mapping,
                        matrix)
    if isinstance(labels, torch.Tensor):
        return noisy.to(labels.device), t
    return noisy.numpy(), t


def _label_array(labels, error: type[Exception]) -> np.ndarray:
    """A contiguous array; unsigned or wide integers as int64 (torch has no uint64)."""
    a = np.ascontiguousarray(np.asarray(labels))
    if a.dtype.kind in "ui" and a.dtype != np.int64:
        if a.size and a.dtype.kind == "u" and a.max() > np.iinfo(np.int64).max:
            raise error("labels too large for class indices")
        a = a.astype(np.int64)
    return a


def label_tensor(labels, num_classes: int, error: type[Exception] = SlimlabError) -> torch.Tensor:
    """[N] class indices (numpy, a list or a tensor on any device) as a CPU int64 tensor, or one line (``error``)
    naming what is wrong: not 1-D integers, or outside [0, num_classes)."""
    y = labels.detach().cpu() if isinstance(labels, torch.Tensor) else torch.as_tensor(_label_array(labels, error))
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise error(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    if y.ndim != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise error(f"labels must be a 1-D integer array (class indices, not one-hot), got shape "
                    f"{tuple(y.shape)} of {y.dtype}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise error(f"labels must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}")
    return y.long()


def _corrupt(y: torch.Tensor, kind: str, rate: float, num_classes: int, seed: int, mode: str, exclude_true: bool,
             mapping: dict[int, int] | None, matrix: np.ndarray | None) -> tuple[torch.Tensor, np.ndarray]:
    y = y.clone()
    n, k = len(y), num_classes
    if isinstance(rate, (np.ndarray, torch.Tensor)) and rate.ndim == 0:  # a 0-d array or tensor is a number
        rate = rate.item()
    if kind != "matrix" and not (isinstance(rate, numbers.Real) and not isinstance(rate, bool) and 0 <= rate <= 1):
        raise SlimlabError(f"noise rate must be a number in [0, 1], got {rate!r}")
    if mode not in ("exact", "bernoulli"):
        raise SlimlabError(f"unknown noise mode '{mode}' (exact, bernoulli)")
    g = torch.Generator().manual_seed(seed)
    noisy = y.clone()

    def chosen(pool: torch.Tensor, r: float) -> torch.Tensor:
        if mode == "exact":
            return pool[torch.randperm(len(pool), generator=g)[: int(r * len(pool))]]
        return pool[torch.rand(len(pool), generator=g) < r]

    if kind == "symmetric":
        sel = chosen(torch.arange(n), rate)
        if exclude_true:
            noisy[sel] = (y[sel] + torch.randint(1, k, (len(sel),), generator=g)) % k
        else:
            noisy[sel] = torch.randint(0, k, (len(sel),), generator=g)
    elif kind == "pairflip":
        sel = chosen(torch.arange(n), rate)
        noisy[sel] = (y[sel] + 1) % k
    elif kind == "asymmetric":
        for i, j in sorted(_need(mapping, k).items()):
            sel = chosen(torch.nonzero(y == i).flatten(), rate)
            noisy[sel] = j
    elif kind == "matrix":
        t = np.asarray(matrix, dtype=np.float64)
        if t.shape != (k, k) or (t < 0).any() or not np.allclose(t.sum(1), 1, atol=1e-6):
            raise SlimlabError(f"noise matrix must be {k}x{k}, non-negative, with rows summing to 1")
        for i in range(k):
            pool = torch.nonzero(y == i).flatten()
            pool = pool[torch.randperm(len(pool), generator=g)]
            if mode == "exact":
                counts = _largest_remainder(t[i] * len(pool), g)
                noisy[pool] = torch.repeat_interleave(torch.arange(k), torch.as_tensor(counts))
            else:
                noisy[pool] = torch.multinomial(torch.as_tensor(t[i]), len(pool), replacement=True, generator=g)
    else:
        raise SlimlabError(f"unknown noise kind '{kind}' (symmetric, asymmetric, pairflip, matrix)")
    return noisy, transition_matrix(y, noisy, k)


def _largest_remainder(shares: np.ndarray, g: torch.Generator) -> np.ndarray:
    """Integer counts closest to ``shares`` with the same total (Hamilton's method): each share rounded down, the
    samples left over to the largest remainders, ties broken at random."""
    counts = np.floor(shares + 1e-9).astype(int)
    left = int(round(shares.sum())) - int(counts.sum())
    if left > 0:
        tie = torch.rand(len(shares), generator=g).numpy()
        counts[np.lexsort((tie, -(shares - counts)))[:left]] += 1
    return counts


def transition_matrix(clean: torch.Tensor, noisy: torch.Tensor, num_classes: int) -> np.ndarray:
    """Empirical T[i, j]: the fraction of samples of true class i that carry label j."""
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (clean.numpy(), noisy.numpy()), 1)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1)


def parse_noise(spec: str) -> tuple[str, float | None, str | None]:
    """``symmetric:0.4`` -> ("symmetric", 0.4, None); ``matrix:T.csv`` -> ("matrix", None, "T.csv")."""
    if ":" not in spec:
        raise SlimlabError(f"--noise {spec!r}: expected KIND:RATE, e.g. symmetric:0.4")
    kind, arg = spec.split(":", 1)
    if kind == "matrix":
        if not Path(arg).is_file():
            raise SlimlabError(f"noise matrix file not found: {arg}")
        return kind, None, arg
    try:
        rate = float(arg)
    except ValueError:
        raise SlimlabError(f"--noise {spec!r}: the rate must be a number") from None
    if kind not in ("symmetric", "asymmetric", "pairflip"):
        raise SlimlabError(f"unknown noise kind '{kind}' (symmetric, asymmetric, pairflip, matrix)")
    return kind, rate, None


def load_matrix(path: str) -> np.ndarray:
    """A square matrix of numbers from a ``.npy`` file or a comma-separated text file; one line if it is not."""
    try:
        m = np.load(path, allow_pickle=False) if path.endswith(".npy") else np.loadtxt(path, delimiter=",", ndmin=2)
    except (ValueError, OSError) as e:
        raise SlimlabError(f"noise matrix {path}: not a matrix of numbers ({str(e).splitlines()[0][:120]})") from None
    m = np.asarray(m, dtype=np.float64) if np.asarray(m).dtype.kind in "biuf" else None
    if m is None or m.ndim != 2 or m.shape[0] != m.shape[1] or not np.isfinite(m).all():
        raise SlimlabError(f"noise matrix {path}: expected a square matrix of finite numbers")
    return m
