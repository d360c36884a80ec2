"""The options that make the noisy-label methods match their reference code: clean validation, gradient
clipping, weight decay on every parameter, and the classifier head under --init."""

from __future__ import annotations

import torch
import torch.nn as nn

from conftest import ListLoader
from slimlab.config import TrainConfig
from slimlab.engine import Dist, build_optimizer
from slimlab.models import create_model
from slimlab.models.io import head_keys, load_matching
from slimlab.tasks.common import make_loaders, prepare_data


def test_clean_validation_scores_against_the_true_labels():
    cfg = TrainConfig(data="digits", noise="symmetric:0.8", val_fraction=0.2, clean_val=True, progress="none")
    p = prepare_data(cfg)
    assert (p.targets[p.val_idx] != p.ds.train.targets[p.val_idx]).any()  # the split's given labels are noisy
    val = make_loaders(cfg, p, Dist()).val
    got = torch.cat([b["target"] for b in val])
    assert torch.equal(got, p.ds.train.targets[p.val_idx].to(got))
    noisy_val = make_loaders(TrainConfig(data="digits", noise="symmetric:0.8", val_fraction=0.2), p, Dist()).val
    assert not torch.equal(torch.cat([b["target"] for b in noisy_val]), got)


def test_clean_fine_tuning_images_come_from_the_noisy_training_subset_with_their_true_labels():
    """--clean-subset K after --train-subset N: K images per class re-labelled out of the user's own N, not from
    images the noisy run never had (and never from validation)."""
    kw = dict(data="digits", noise="symmetric:0.6", val_fraction=0.1, train_subset=600, progress="none")
    noisy = prepare_data(TrainConfig(**kw))
    p = prepare_data(TrainConfig(**kw, clean_subset=5))
    assert set(p.train_idx.tolist()) <= set(noisy.train_idx.tolist())  # out of the noisy run's 600
    assert torch.equal(p.val_idx, noisy.val_idx) and not set(p.train_idx.tolist()) & set(p.val_idx.tolist())
    assert torch.equal(p.targets, p.ds.train.targets)  # true labels
    assert torch.bincount(p.targets[p.train_idx], minlength=10).tolist() == [5] * 10


def test_weight_decay_on_every_parameter_as_the_official_pencil_code():
    m = create_model("convnet", 10, width=8)
    groups = build_optimizer(m, "sgd", 0.1, weight_decay=1e-4, no_decay_1d=False).param_groups
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-4
    groups = build_optimizer(m, "sgd", 0.1, weight_decay=1e-4).param_groups
    assert sorted(g["weight_decay"] for g in groups) == [0.0, 1e-4]  # slimlab's default: no decay on BN and bias


def test_gradient_clipping_bounds_the_step(tmp_path):
    from slimlab.engine import Loaders, Objective, fit

    def run(clip: float) -> float:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
        before = model[1].weight.detach().clone()
        x, y = torch.randn(16, 3, 2, 2) * 100, torch.arange(16) % 3

        cfg = TrainConfig(epochs=1, lr=1.0, momentum=0.0, weight_decay=0.0, amp=False, channels_last=False,
                          clip_grad_norm=clip, progress="none")
        fit(model, Loaders(ListLoader([{"image": x, "target": y, "index": torch.arange(16)}])), Objective(), cfg, None)
        return float((model[1].weight.detach() - before).norm())

    assert run(0.5) <= 0.5 + 1e-5  # one SGD step at lr 1 moves the weights by at most the clipped norm
    assert run(0.0) > 5.0


def test_init_head_is_fresh_when_the_classes_differ():
    src = create_model("convnet", 10, width=8)
    with torch.no_grad():
        for p in src.parameters():
            p.fill_(0.5)
    for skip in (False, True):
        dst = create_model("convnet", 10, width=8)
        load_matching(dst, src.state_dict(), skip_head=skip)
        head = head_keys(dst)
        assert head and all(torch.equal(dst.state_dict()[k], src.state_dict()[k]) != skip for k in head)
        body = [k for k in dst.state_dict() if k not in head and dst.state_dict()[k].is_floating_point()]
        assert all(torch.equal(dst.state_dict()[k], src.state_dict()[k]) for k in body)


def test_init_from_a_run_on_other_classes_keeps_a_fresh_head(tmp_path):
    from slimlab.engine import load_checkpoint
    from slimlab.tasks.train import train

    a = train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, epochs=1, progress="none",
                          out=str(tmp_path / "a")))
    same = train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, epochs=1, progress="none",
                             init=a["out"] + "/last.pt", out=str(tmp_path / "b")))
    other = train(TrainConfig(data="fake", model="convnet", model_kwargs={"width": 8}, epochs=1, progress="none",
                              init=a["out"] + "/last.pt", out=str(tmp_path / "c")))
    assert load_checkpoint(same["out"] + "/last.pt")["init"]["head"] == "copied (same classes)"
    assert load_checkpoint(other["out"] + "/last.pt")["init"]["head"] == "fresh (the classes differ)"
