"""BatchNorm re-estimation after pruning draws its images as training drew them: each calibration image is a
padded random crop of its training image, perhaps flipped (checked by exhaustive search over the crops)."""

import torch
import torch.nn.functional as F

from slimlab.config import TrainConfig
from slimlab.tasks.common import prepare_data
from slimlab.tasks.prune import calibration_images


def _pixels(x: torch.Tensor, ds) -> torch.Tensor:
    """Normalised images back to 0..255 pixel values."""
    mean = torch.tensor(ds.mean).view(1, -1, 1, 1) * 255
    std = torch.tensor(ds.std).view(1, -1, 1, 1) * 255
    return (x * std + mean).round()


def _crop_of(img: torch.Tensor, orig: torch.Tensor, pad: int) -> tuple[int, int, bool] | None:
    """The (dy, dx, flipped) under which ``img`` is a crop of ``orig`` padded with zeros, or None."""
    h, w = orig.shape[-2:]
    padded = F.pad(orig, (pad, pad, pad, pad))
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            for flipped, cand in ((False, crop), (True, crop.flip(-1))):
                if torch.equal(cand, img):
                    return dy, dx, flipped
    return None


def test_bn_images_are_augmented_training_images_when_the_model_trained_so():
    p = prepare_data(TrainConfig(data="fake", val_fraction=0.0))
    plain = _pixels(calibration_images(p, 30, seed=3, augment=False), p.ds)
    aug = _pixels(calibration_images(p, 30, seed=3, augment=True), p.ds)
    assert plain.shape == aug.shape == (30, 3, 32, 32)
    found = [_crop_of(a, o, p.ds.pad) for a, o in zip(aug, plain)]
    assert all(f is not None for f in found), "an augmented image that is no crop or flip of its original"
    moved = sum(f != (p.ds.pad, p.ds.pad, False) for f in found)
    assert moved >= 20  # 161 of 162 (crop, flip) pairs move the image: nearly all must
    assert sum(f[2] for f in found) >= 5  # flips happen too
    # without augmentation: the stratified images themselves, unchanged
    again = _pixels(calibration_images(p, 30, seed=3, augment=False), p.ds)
    assert torch.equal(plain, again)
    assert any(torch.equal(plain[0], p.ds.train.images[i].float()) for i in p.train_idx.tolist())
