"""Every command that rebuilds a model's data does so at the size the model was trained at: CIFAR honours
--image-size, probe takes its trunk's size, a run trained on a DataSet object records its size, and labels and
prune read the checkpoint's size when a config does not say it."""

import shutil

import numpy as np
import pytest

from slimlab import api
from slimlab import data as D
from slimlab.config import TrainConfig, dump_yaml, from_dict, load_yaml
from slimlab.errors import SlimlabError
from slimlab.tasks.labels import LabelsConfig


def test_cifar_is_resized_to_the_asked_size(monkeypatch, tmp_path):
    import torchvision.datasets as tvd

    class FakeCifar:
        classes = [str(i) for i in range(10)]

        def __init__(self, root, train, download):
            n = 20 if train else 10
            self.data = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
            self.targets = [i % 10 for i in range(n)]

    monkeypatch.setattr(tvd, "CIFAR10", FakeCifar)
    assert D.build("cifar10", str(tmp_path)).image_size == 32
    ds = D.build("cifar10", str(tmp_path), image_size=48)
    assert ds.train.images.shape[1:] == (3, 48, 48) and ds.test.images.shape[1:] == (3, 48, 48) and ds.pad == 6


@pytest.fixture(scope="module")
def run16(tmp_path_factory):
    out = tmp_path_factory.mktemp("size") / "run"
    api.train(TrainConfig(model="convnet", model_kwargs={"width": 8}, epochs=1, train_subset=200, noise="symmetric:0.2",
                          progress="none", out=str(out)), data=D.build("digits", image_size=16))
    return out


def test_a_run_on_a_dataset_object_records_its_size(run16):
    assert load_yaml(run16 / "config.yaml")["image_size"] == 16


def test_probe_takes_its_trunks_size(run16):
    from slimlab.tasks.probe import ProbeConfig, as_train_config

    t = as_train_config(ProbeConfig(checkpoint=str(run16)))
    assert t.image_size == 16 and t.model_kwargs["input_size"] == 16
    assert as_train_config(ProbeConfig(checkpoint=str(run16), image_size=24)).image_size == 24  # asked for: kept
    assert t.model_kwargs["block"] == 2  # a convnet trunk: its last feature map (the block is not used)
    with pytest.raises(SlimlabError, match="--block 3: convnet has no numbered blocks"):
        as_train_config(ProbeConfig(checkpoint=str(run16), block=3))


def test_labels_reads_the_checkpoints_size_when_the_config_does_not_say_it(run16, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run16, old)
    cfg = load_yaml(old / "config.yaml")
    dump_yaml(from_dict(TrainConfig, {**cfg, "image_size": 0}, "x"), old / "config.yaml")  # as an older slimlab wrote
    for d in (run16, old):
        api.labels(LabelsConfig(run=str(d), detector="model", grid=0))
    assert np.array_equal(np.load(old / "pred_probs.npy"), np.load(run16 / "pred_probs.npy"))


def test_prune_measures_the_original_at_its_trained_size(run16, tmp_path):
    import torch

    from slimlab.prune.config import PruneConfig

    ck = torch.load(run16 / "best.pt", weights_only=True)
    ck["config"]["image_size"] = 0  # as a run on a DataSet object recorded it before: only data.image_size says 16
    torch.save(ck, tmp_path / "old.pt")
    s = api.prune(PruneConfig(checkpoint=str(tmp_path / "old.pt"), method="weight_sum", keep_ratio=0.5, mode="oneshot",
                              finetune_epochs=0, latency=False, progress="none", out=str(tmp_path / "p")))
    ev = api.evaluate(api.EvaluateConfig(checkpoint=str(run16 / "best.pt")))
    assert s["original"]["test_acc"] == ev["test_acc"] and s["original"]["macs"] == ev["macs"]
