"""Data sets as decoded uint8 tensors.

Every data set is held in memory as ``images`` (uint8, [N, 3, H, W]) and ``targets`` (int64, [N]),
so an epoch is bound by the model, not by JPEG decoding. Grayscale sources are repeated to three
channels so that every model takes every data set. Decoded image folders are cached on disk
(``~/.cache/slimlab/decoded``), keyed by the folder's file list, sizes and modification times.
"""

from __future__ import annotations

import hashlib
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from slimlab.errors import SlimlabError

MAX_SIDE = 4096  # the largest side an image folder is decoded at (--image-size's range)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class Split:
    """One split of a data set: images [N, 3, H, W] uint8 and integer targets [N]."""

    images: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.targets.numel())


@dataclass
class DataSet:
    """A named data set with a train and a test split and its normalisation statistics."""

    name: str
    classes: list[str]
    train: Split
    test: Split
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pad: int = 4  # random-crop padding used by the standard augmentation
    flip: bool = True  # horizontal flips are label-preserving for this data set
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])


def _stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images[: min(len(images), 10000)].float().div_(255)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    x = torch.nn.functional.interpolate(images.float(), size=(size, size), mode="bilinear",
                                        align_corners=False, antialias=True)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def check_memory(n: int, size: int, what: str) -> None:
    """Refuse, in one line, ``n`` RGB uint8 images of ``size`` x ``size`` that would not fit in the memory free
    now (with a margin for the model and a copy): a typo in --image-size should not exhaust the machine."""
    need = n * 3 * size * size
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no estimate
        return
    if need > 0.5 * free:
        raise SlimlabError(f"{what}: {n} images at {size}x{size} need {need / 2**30:.1f} GiB of memory, more than half "
                           f"of the {free / 2**30:.1f} GiB free; give a smaller --image-size")


def digits(image_size: int = 32) -> DataSet:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images), upsampled to 32x32.

    There is no official test split: a fixed, stratified 20% (seed 0) is held out as the test set.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    check_memory(len(d.images), image_size or 32, "digits")
    x = torch.from_numpy(d.images.astype(np.float32) * (255.0 / 16.0)).round().to(torch.uint8)
    x = _resize(x[:, None], image_size or 32).repeat(1, 3, 1, 1)
    y = torch.from_numpy(d.target.astype(np.int64))
    from slimlab.data.split import stratified_split

    train_idx, test_idx = stratified_split(y, 0.2, seed=0)
    mean, std = _stats(x[train_idx])
    return DataSet("digits", [str(i) for i in range(10)], Split(x[train_idx], y[train_idx]),
                   Split(x[test_idx], y[test_idx]), mean, std, pad=2, flip=False)


def fake(num_classes: int = 10, n_train: int = 400, n_test: int = 200, image_size: int = 32,
         seed: int = 0) -> DataSet:
    """Synthetic, learnable images: each class is a fixed colour pattern plus noise. For tests."""
    check_memory(n_train + n_test, image_size, "fake")
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(num_classes, 3, 4, 4, generator=g) * 200

    def make(n: int) -> Split:
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        base = torch.nn.functional.interpolate(protos[y], size=(image_size, image_size), mode="nearest")
        x = (base + torch.rand(n, 3, image_size, image_size, generator=g) * 55).clamp(0, 255)
        return Split(x.to(torch.uint8), y)

    train = make(n_train)
    mean, std = _stats(train.images)
    return DataSet("fake", [f"class{i}" for i in range(num_classes)], train, make(n_test), mean, std)


def _to_rgb8(im) -> np.ndarray:
    """An RGB uint8 array of a PIL image; 16- and 32-bit grayscale are scaled to 8 bits, not clipped at 255."""
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        # by the mode, never by an image's own values, so every image of a folder is scaled alike: 16-bit
        # (and 32-bit integer, which is how 16-bit files often open) 65535 -> 255; floating point 1.0 -> 255
        a = np.asarray(im, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ValueError("non-finite pixel values")
        a = a * 255.0 if im.mode == "F" else a / 257.0
        g = np.clip(np.round(a), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    return np.array(im.convert("RGB"))


def _decode(path: str, size: int = 0) -> np.ndarray | str:
    """The image as an RGB uint8 array [H, W, 3]; or a string saying why it cannot be read. An image at least 4x
    ``size`` on its shorter side is first reduced by an integer factor (PIL's box filter) to between 2x and 4x
    ``size``, so that a folder of huge images never sits in memory at full size; the exact resize to ``size``
    follows in the calling process (no torch in the decoding workers)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            factor = min(im.size) // (2 * size) if size else 0
            if factor >= 2 and im.mode in ("L", "RGB", "RGBA"):  # the modes PIL reduces (16-bit: full size)
                im.draft(im.mode, (im.size[0] // factor, im.size[1] // factor))  # JPEG: decode at a lower scale
                im = im.reduce(max(1, min(im.size) // (2 * size)))
            return _to_rgb8(im)
    except Image.DecompressionBombError:
        return _too_large(path)
    except ValueError as e:
        return f"{path} ({e})" if "non-finite" in str(e) else f"{path} (ValueError)"
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        return f"{path} ({type(e).__name__})"


def _too_large(path: str) -> str:
    from PIL import Image

    return f"{path} (too large: over {2 * Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels)"


def _shape(path: str) -> tuple[int, int] | str:
    """(height, width) from the file's header, without decoding it; or why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except Image.DecompressionBombError:
        return _too_large(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return f"{path} ({type(e).__name__})"


def _scan(split_dir: Path) -> tuple[list[str], list[tuple[str, int]]]:
    if not split_dir.is_dir():
        raise SlimlabError(f"image folder has no '{split_dir.name}/' directory: {split_dir}")
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    for c in classes:  # class names go into checkpoints, summaries, reports and plots as text
        try:
            c.encode("utf-8")
        except UnicodeEncodeError:
            raise SlimlabError(f"{split_dir}: the class folder name {os.fsencode(c)!r} is not valid UTF-8; "
                               "rename it (class names are stored and shown as text)") from None
    # a class folder that is a link to nowhere or a link loop is not silently dropped: it is listed with the rest
    broken: list[str] = [f"{p} (a class folder link that cannot be followed)" for p in sorted(split_dir.iterdir())
                         if p.is_symlink() and not p.exists()]
    if not classes and not broken:
        raise SlimlabError(f"no class folders in {split_dir}")
    files: list[tuple[str, int]] = []
    for ci, c in enumerate(classes):
        found = sorted(p for p in (split_dir / c).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        broken += [f"{p} (dangling link or not a file)" for p in found if not p.is_file()]
        found = [str(p) for p in found if p.is_file()]
        if not found and not broken:
            raise SlimlabError(f"empty class folder (no images): {split_dir / c}")
        files += [(f, ci) for f in found]
    if broken:
        raise unreadable(split_dir, broken)
    return classes, files


def unreadable(split_dir: Path, problems: list[str]) -> SlimlabError:
    """Every unreadable file of a split, in one error (the first few named)."""
    more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
    return SlimlabError(f"{len(problems)} unreadable image(s) in {split_dir}: {'; '.join(problems[:5])}{more}")


def common_size(shapes: list[tuple[int, ...]]) -> int:
    """The target side of a folder of images: the most common (height, width), its shorter side if not square."""
    from collections import Counter

    (h, w), _ = Counter((int(s[0]), int(s[1])) for s in shapes).most_common(1)[0]
    return min(h, w)


CACHE_VERSION = 3  # bump when decoding changes (2: most common size, 16-bit scaling; 3: huge images reduced first)


def _cache_key(files: list[tuple[str, int]], size: int) -> str:
    h = hashlib.sha1(f"v{CACHE_VERSION}|{size}".encode())
    for f, c in files:
        st = os.stat(f)
        h.update(f"{f}|{c}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))  # any file name
    return h.hexdigest()[:20]


def _load_split(split_dir: Path, image_size: int, cache_dir: Path | None) -> tuple[list[str], Split]:
    classes, files = _scan(split_dir)
    key = _cache_key(files, image_size)
    cache = cache_dir / f"{key}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            blob = torch.load(cache, weights_only=True)
            return classes, Split(blob["images"], blob["targets"])
        except Exception:  # a damaged cache is rebuilt, never trusted
            pass
    paths = [f for f, _ in files]
    shapes = _parallel(_shape, paths)  # headers only: the size is known before any image is decoded
    problems = [a for a in shapes if isinstance(a, str)]
    if problems:
        raise unreadable(split_dir, problems)
    size = image_size or common_size(shapes)
    if not 8 <= size <= MAX_SIDE:
        raise SlimlabError(f"{split_dir}: its images are {size}x{size}; give --image-size in [8, {MAX_SIDE}]")
    check_memory(len(paths), size, str(split_dir))
    arrays = _parallel(partial(_decode, size=size), paths)
    problems = [a for a in arrays if isinstance(a, str)]
    if problems:
        raise unreadable(split_dir, problems)
    out = torch.empty(len(arrays), 3, size, size, dtype=torch.uint8)
    resized = sum(tuple(s) != (size, size) for s in shapes)
    for i, a in enumerate(arrays):
        out[i] = _resize(torch.from_numpy(a).permute(2, 0, 1)[None], size)[0]
        arrays[i] = None  # each decoded image is let go once it is in place
    if resized and not image_size:
        _NOTES.append(f"slimlab: note: resized {resized} of {len(arrays)} images of {split_dir} to {size}x{size}, "
                      "their most common size (--image-size sets another)")
    targets = torch.tensor([c for _, c in files], dtype=torch.int64)
    if cache is not None:
        from slimlab.io import atomic_save

        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_save({"images": out, "targets": targets}, cache)
        except OSError:
            pass
    return classes, Split(out, targets)


def _parallel(fn, paths: list[str]) -> list:
    workers = min(os.cpu_count() or 1, 8)
    if workers > 1 and len(paths) > 2000:
        with ProcessPoolExecutor(workers) as ex:
            return list(ex.map(fn, paths, chunksize=512))
    return [fn(p) for p in paths]


_NOTES: list[str] = []  # printed once the whole folder has loaded: an error comes alone, on one line


def default_cache_dir() -> Path | None:
    env = os.environ.get("SLIMLAB_CACHE")
    if env == "off":
        return None
    return Path(env or "~/.cache/slimlab").expanduser() / "decoded"


def imagefolder(path: str, image_size: int = 0) -> DataSet:
    """Any ``train/<class>/*`` and ``test/<class>/*`` tree (ImageFolder layout), decoded once."""
    root = Path(path).expanduser()
    if not root.is_dir():
        where = "" if root.is_absolute() else (f" (a relative path, looked for from {Path.cwd()}; a run or zoo model "
                                               "records it as it was given: run slimlab from the folder it is relative "
                                               "to, or give --data imagefolder:PATH where a command takes --data)")
        raise SlimlabError(f"data path not found: {root}{where}")
    cache = default_cache_dir()
    _NOTES.clear()
    classes, train = _load_split(root / "train", image_size, cache)
    test_classes, test = _load_split(root / "test", image_size or train.images.shape[-1], cache)
    if test_classes != classes:
        raise SlimlabError(f"{root}: train/ and test/ have different class folders")
    for note in _NOTES:
        print(note, file=sys.stderr)
    mean, std = _stats(train.images)
    size = train.images.shape[-1]
    name = root.name
    return DataSet(name, classes, train, test, mean, std, pad=max(1, size // 8), flip=True,
                   info={"path": str(root)})


def cifar(which: str, root: str, download: bool, image_size: int = 0) -> DataSet:
    """torchvision's CIFAR-10 / CIFAR-100 from ``root`` (downloaded there when ``download``), at 32x32 or resized
    to ``image_size`` (bilinear, antialiased: more pixels, no new detail)."""
    from torchvision import datasets as tvd

    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[which]
    r = str(Path(root).expanduser())
    try:
        tr = cls(r, train=True, download=download)
        te = cls(r, train=False, download=download)
    except RuntimeError as e:
        raise SlimlabError(f"{which} not found under {r} ({e}); pass --download to fetch it") from None
    except OSError as e:
        raise SlimlabError(f"{which}: download or read failed under {r}: {e}") from None

    size = image_size or 32
    if size != 32:
        check_memory(len(tr.data) + len(te.data), size, which)

    def split(ds) -> Split:
        return Split(_resize(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), size),
                     torch.tensor(ds.targets, dtype=torch.int64))

    train = split(tr)
    mean, std = _stats(train.images)
    return DataSet(which, list(tr.classes), train, split(te), mean, std, pad=max(1, size // 8), flip=True)


def from_datasets(train, test, classes: list[str] | None = None, name: str = "custom",
                  flip: bool = True, pad: int | None = None) -> DataSet:
    """A :class:`DataSet` from your own train and test sets: any sequences of ``(image, label)`` pairs, such
    as torchvision data sets without a transform. An image is a PIL image, an integer array or tensor of pixel
    values 0-255 ([H, W], [H, W, C] or [C, H, W]), or a float one in [0, 1] or [0, 255] (decided once per set,
    by its largest value); normalised images (negative values) are refused: slimlab normalises with the training
    set's mean and std. All share one size. The images are held in memory as uint8, as every slimlab data set is.
    Training augments them (unless ``augment`` is off) with a random crop after zero padding of ``pad`` pixels
    (default: an eighth of the size, CIFAR's 4 at 32 px) and, with ``flip``, a horizontal flip: pass
    ``flip=False`` for images whose mirror is another class (digits, text)."""
    tr, te = _split_of(train, "train"), _split_of(test, "test")
    if tr.images.shape[1:] != te.images.shape[1:]:
        raise SlimlabError(f"train images are {tuple(tr.images.shape[1:])}, test images {tuple(te.images.shape[1:])}")
    n = int(max(tr.targets.max(), te.targets.max())) + 1
    classes = list(classes) if classes is not None else list(getattr(train, "classes", None) or range(n))
    classes = [str(c) for c in classes]
    if len(classes) < n:
        raise SlimlabError(f"labels go up to {n - 1} but only {len(classes)} class names were given")
    mean, std = _stats(tr.images)
    pad = max(1, tr.images.shape[-1] // 8) if pad is None else pad
    return DataSet(name, classes, tr, te, mean, std, pad=pad, flip=flip)


def _split_of(items, which: str) -> Split:
    images, targets = [], []
    for i in range(len(items)):
        im, y = items[i]
        t = _image_chw(im, f"{which} item {i}")
        images.append(t if t.is_floating_point() else _in_byte_range(t, which).to(torch.uint8))
        targets.append(int(y))
        if targets[-1] < 0:
            raise SlimlabError(f"{which} item {i}: label {targets[-1]}; labels are class indices 0, 1, ...")
    if not images:
        raise SlimlabError(f"the {which} set is empty")
    if len({tuple(x.shape[1:]) for x in images}) > 1:
        raise SlimlabError(f"the {which} images differ in size: resize them to one size first")
    return Split(_pixels_uint8(images, which), torch.tensor(targets, dtype=torch.int64))


def _pixels_uint8(images: list[torch.Tensor], which: str) -> torch.Tensor:
    """[N, 3, H, W] uint8 of one set's images (uint8, or floats whose range is decided once for the set)."""
    floats = [t for t in images if t.is_floating_point() and t.numel()]
    scale = 255.0 if floats and max(float(t.max()) for t in floats) <= 1.0 else 1.0
    out = []
    for t in images:
        if t.is_floating_point():
            t = _in_byte_range((t * scale).round(), which)
        out.append(t.to(torch.uint8).expand(3, -1, -1))
    return torch.stack(out)


def _in_byte_range(t: torch.Tensor, which: str) -> torch.Tensor:
    if t.numel() and float(t.min()) < 0:
        raise SlimlabError(f"the {which} images have negative values (min {float(t.min()):.3g}): pass un-normalised "
                           "pixels (PIL images, 0-255, or floats in [0, 1]); slimlab normalises them itself")
    if t.numel() and float(t.max()) > 255:
        raise SlimlabError(f"the {which} images have values up to {float(t.max()):.6g}: slimlab holds 8-bit pixels "
                           "(0-255); scale 16-bit or other images down first")
    return t


def _image_chw(im, where: str) -> torch.Tensor:
    """[1 or 3, H, W] of a PIL image (uint8), an array or a tensor, its values as given."""
    from PIL import Image

    if isinstance(im, Image.Image):
        im = _to_rgb8(im)
    t = torch.as_tensor(np.asarray(im)) if not isinstance(im, torch.Tensor) else im.detach().cpu()
    if t.dtype == torch.bool or t.is_complex():
        raise SlimlabError(f"{where}: pixel values of type {t.dtype}")
    if not t.is_floating_point() and t.dtype != torch.uint8:
        t = t.to(torch.int64)  # 16-bit and wider images: range-checked as integers (uint16 has no min in torch)
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise SlimlabError(f"{where}: non-finite pixel values")
    if t.dim() == 2:
        t = t[None]
    elif t.dim() == 3 and t.shape[-1] in (1, 3) and t.shape[0] not in (1, 3):
        t = t.permute(2, 0, 1)
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise SlimlabError(f"{where}: expected an image [H, W], [H, W, C] or [C, H, W], got shape {tuple(t.shape)}")
    return t
