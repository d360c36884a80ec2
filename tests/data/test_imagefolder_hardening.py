"""Image folders that used to degrade silently: mixed sizes, 16-bit images, unreadable files."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from slimlab import data as D
from slimlab.errors import SlimlabError


def _folder(root, sizes, first_size=None):
    for split in ("train", "test"):
        for ci, cls in enumerate(("a", "b")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i, s in enumerate(sizes):
                Image.fromarray(np.full((s, s, 3), 40 + 100 * ci, np.uint8)).save(d / f"{i + 1:03d}.png")
            if first_size:  # a thumbnail sorted before everything else
                Image.fromarray(np.full((first_size, first_size, 3), 40 + 100 * ci, np.uint8)).save(d / "000.png")
    return root


def test_most_common_size_wins_over_the_first_file(tmp_path, capsys):
    root = _folder(tmp_path / "f", [64] * 5, first_size=4)
    ds = D.build(f"imagefolder:{root}")
    assert ds.image_size == 64  # used to be 4: the first file's size
    err = capsys.readouterr().err
    assert "resized 2 of 12 images" in err and "most common size" in err
    assert D.build(f"imagefolder:{root}", image_size=16).image_size == 16  # --image-size still decides


def test_16bit_png_is_scaled_not_saturated(tmp_path):
    root = _folder(tmp_path / "f", [8, 8])
    g = np.array([[0, 257, 32896, 65535]] * 4, dtype=np.uint16).repeat(2, axis=1)  # 4x8 -> resized? keep 8x8
    g = np.vstack([g, g])
    Image.fromarray(g).save(root / "train" / "a" / "001.png")
    assert Image.open(root / "train" / "a" / "001.png").mode == "I;16"
    ds = D.build(f"imagefolder:{root}")
    img = ds.train.images[0]  # class a, first file
    assert img.shape == (3, 8, 8)
    assert img[0, 0, :].tolist() == [0, 0, 1, 1, 128, 128, 255, 255]  # x / 257, where convert("RGB") gave 255s


def test_float_and_32bit_images_scaled_by_their_mode(tmp_path):
    root = _folder(tmp_path / "f", [8, 8])
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(root / "train" / "a" / "001.tif")  # mode F, 0..1
    Image.fromarray(np.full((8, 8), 65535, np.int32)).save(root / "train" / "b" / "001.tif")  # mode I, 16-bit range
    for f in ("a", "b"):
        (root / "train" / f / "001.png").unlink()
    ds = D.build(f"imagefolder:{root}")
    first_a, first_b = ds.train.images[0], ds.train.images[2]
    assert int(first_a[0, 0, 0]) == 128 and int(first_b[0, 0, 0]) == 255


def test_unreadable_files_listed_in_one_error(tmp_path):
    root = _folder(tmp_path / "f", [8, 8])
    (root / "train" / "a" / "bad.jpg").write_bytes(b"not an image")
    os.symlink(tmp_path / "gone.png", root / "train" / "b" / "link.png")
    with pytest.raises(SlimlabError) as e:
        D.build(f"imagefolder:{root}")
    msg = str(e.value)
    assert "\n" not in msg and "link.png (dangling link" in msg
    (root / "train" / "b" / "link.png").unlink()
    with pytest.raises(SlimlabError, match=r"1 unreadable image\(s\) in .*bad.jpg \(UnidentifiedImageError\)"):
        D.build(f"imagefolder:{root}")


def test_decompression_bomb_is_one_line(tmp_path, monkeypatch):
    root = _folder(tmp_path / "f", [16, 16])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 16x16 = 256 px > 2 x 50: a "bomb" at this limit
    with pytest.raises(SlimlabError, match="too large"):
        D.build(f"imagefolder:{root}")


def test_class_folder_name_that_is_not_utf8_is_one_line(tmp_path):
    root = _folder(tmp_path / "f", [8, 8])
    os.rename(root / "train" / "b", os.fsencode(root / "train") + b"/caf\xe9")  # Latin-1 bytes, not UTF-8
    with pytest.raises(SlimlabError, match=r"class folder name b'caf\\xe9' is not valid UTF-8"):
        D.build(f"imagefolder:{root}")


def test_image_file_name_that_is_not_utf8_loads(tmp_path):
    """File names are only paths: any bytes are fine (the cache key used to fail encoding them)."""
    root = _folder(tmp_path / "f", [8, 8])
    os.rename(root / "train" / "a" / "001.png", os.fsencode(root / "train" / "a") + b"/\xff\xfe.png")
    ds = D.build(f"imagefolder:{root}")
    assert len(ds.train.targets) == 4 and ds.classes == ["a", "b"]


def test_huge_images_are_reduced_while_decoding_and_small_ones_resize_as_before(tmp_path, monkeypatch):
    """An image at least 4x the target side is box-reduced as it is decoded (a folder of 8000x8000 PNGs held
    every one at full size); below that the resize is the one it always was (antialiased bilinear, torch)."""
    import torch

    from slimlab.data.datasets import _decode, _resize

    g = np.random.default_rng(0)
    big = g.integers(0, 256, (256, 320, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "big.png")
    small = g.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(small).save(tmp_path / "small.png")
    assert min(_decode(str(tmp_path / "big.png"), 16).shape[:2]) == 32  # 256 // 32 = 8: reduced to 32x40
    assert np.array_equal(_decode(str(tmp_path / "small.png"), 16), small)  # 24 < 4 * 16: decoded as it is
    # the reduced image's box averages, then the usual resize: close to resizing the full image at once
    direct = _resize(torch.from_numpy(big).permute(2, 0, 1)[None], 16)[0].float()
    via = _resize(torch.from_numpy(_decode(str(tmp_path / "big.png"), 16)).permute(2, 0, 1)[None], 16)[0].float()
    assert (direct - via).abs().mean() < 3


def test_a_folder_too_large_for_memory_is_one_line(tmp_path, monkeypatch):
    root = _folder(tmp_path / "f", [8] * 2)
    monkeypatch.setattr(os, "sysconf", lambda name: 1024 if name == "SC_AVPHYS_PAGES" else 4096)  # 4 MiB free
    with pytest.raises(SlimlabError, match=r"need .* GiB of memory, more than half of the 0.0 GiB free"):
        D.build(f"imagefolder:{root}", image_size=512)
    with pytest.raises(SlimlabError, match="digits: 1797 images at 1024x1024"):
        D.build("digits", image_size=1024)
    with pytest.raises(SlimlabError, match="fake: 600 images at 4096x4096"):  # a checkpoint's image size, too
        D.build("fake", image_size=4096)
