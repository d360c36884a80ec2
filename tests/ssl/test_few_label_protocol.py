"""RotNet's semi-supervised protocol (official config): a conv classifier on frozen block-2 features,
trained for epochs of ``epoch_size`` samples drawn from the K labelled images per class."""

from __future__ import annotations

from pathlib import Path

import torch

from slimlab.config import TrainConfig
from slimlab.engine import Dist, load_checkpoint
from slimlab.tasks.common import make_loaders, prepare_data
from slimlab.tasks.run import check_recipe, load_recipe

RECIPE = Path(__file__).resolve().parents[2] / "src/slimlab/recipes" / "rotnet_nin_cifar10.yaml"


def test_recipe_few_label_arms_are_the_official_protocol():
    r = load_recipe(RECIPE)
    steps = {s["name"]: s for s in r["steps"]}
    rot, scratch = steps["few_labels_rotnet"], steps["few_labels_scratch"]
    assert rot["kind"] == "probe" and rot["with"]["block"] == 2 and rot["with"]["head"] == "conv"
    assert scratch["with"]["model"] == "nin3"
    for key in ("epoch_size", "labels_per_class", "labels_rule", "lr", "schedule"):
        assert rot["with"][key] == scratch["with"][key], key  # the same images, samples per epoch and optimiser
    # the official configs: the conv classifier 100 epochs at 35/70/85, NIN-3 from scratch 200 at 60/120/160
    assert rot["with"]["epochs"] == "${few_epochs}" and scratch["with"]["epochs"] == "${scratch_epochs}"
    assert r["vars"]["epoch_size"] == 50000 and r["vars"]["few_epochs"] == 100 and r["vars"]["scratch_epochs"] == 200
    assert "few_labels_rotnet" in check_recipe(r, "small")


def test_epoch_size_draws_whole_passes_with_repetition():
    cfg = TrainConfig(data="digits", labels_per_class=3, epoch_size=100, batch_size=10, val_fraction=0.0)
    p = prepare_data(cfg)
    assert len(p.train_idx) == 30
    loader = make_loaders(cfg, p, Dist()).train
    assert len(loader) == 10  # 100 samples / batch 10, from 30 labelled images
    seen = torch.cat([b["index"] for b in loader])
    assert len(seen) == 100 and set(seen.tolist()) == set(p.train_idx.tolist())
    counts = torch.bincount(seen, minlength=int(seen.max()) + 1)[p.train_idx]
    assert counts.min() >= 3 and counts.max() <= 4  # 3 whole shuffled passes and part of a 4th
    plain = make_loaders(TrainConfig(data="digits", labels_per_class=3, batch_size=10, val_fraction=0.0), p, Dist())
    assert len(plain.train) == 3


def test_few_label_probe_trains_the_head_only(tmp_path):
    from slimlab.tasks.pretrain import PretrainConfig
    from slimlab.tasks.pretrain import run as pretrain
    from slimlab.tasks.probe import ProbeConfig
    from slimlab.tasks.probe import run as probe

    trunk = pretrain(PretrainConfig(data="digits", model="nin4", model_kwargs={"width_mult": 0.1}, epochs=1,
                                    train_subset=200, progress="none", out=str(tmp_path / "rot")))
    before = load_checkpoint(trunk["out"] + "/best.pt")["state_dict"]
    s = probe(ProbeConfig(checkpoint=trunk["out"] + "/best.pt", block=2, head="conv", labels_per_class=2,
                          epoch_size=64, batch_size=16, epochs=2, val_fraction=0.0, progress="none",
                          out=str(tmp_path / "probe")))
    after = load_checkpoint(s["out"] + "/last.pt")["state_dict"]
    trunk_keys = [k for k in after if k.startswith("trunk.")]
    assert trunk_keys and all(torch.equal(after[k], before[k[len("trunk."):]]) for k in trunk_keys)
    head = [k for k in after if k.startswith("head.") and k.endswith("weight")]
    assert after[head[0]].shape[0] == round(192 * 0.1)  # the official conv head's width, scaled with the trunk
    assert s["train_images"] == 20


def test_the_official_subset_rule_takes_the_first_k_per_class():
    import torch

    from slimlab.config import TrainConfig
    from slimlab.data import first_per_class
    from slimlab.tasks.common import prepare_data

    t = torch.tensor([1, 0, 1, 0, 2, 1, 0, 2])
    assert first_per_class(t, 2).tolist() == [0, 1, 2, 3, 4, 7]
    p = prepare_data(TrainConfig(data="fake", labels_per_class=3, labels_rule="first", val_fraction=0.0))
    targets = p.targets
    for c in range(10):
        assert p.train_idx[targets[p.train_idx] == c].tolist() == torch.nonzero(targets == c).flatten()[:3].tolist()


def test_the_rotnet_recipe_names_its_schedules_honestly():

    import yaml

    r = yaml.safe_load(RECIPE.read_text())
    steps = {s["name"]: s["with"] for s in r["steps"]}
    assert r["vars"]["few_epochs"] == 100 and r["vars"]["scratch_epochs"] == 200
    assert steps["few_labels_rotnet"]["milestones"] == [0.35, 0.7, 0.85]
    assert steps["few_labels_scratch"]["milestones"] == [0.3, 0.6, 0.8]  # 60/120/160 of 200
    assert steps["few_labels_rotnet"]["labels_rule"] == steps["few_labels_scratch"]["labels_rule"] == "first"
