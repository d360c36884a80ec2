"""``slimlab labels --detector kfold`` keeps each finished fold in the run directory: a labels run killed mid-way
trains only the folds it lacked and ends with the probabilities an uninterrupted run computes; a cached fold of
another config is never read; ``--overwrite`` of the run removes the cache as one of its own folders."""

import shutil

import numpy as np
import pytest

from slimlab import api
from slimlab.config import TrainConfig
from slimlab.engine.rundir import claim
from slimlab.errors import SlimlabError
from slimlab.tasks import labels as L
from slimlab.tasks.labels import LabelsConfig


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("kfold") / "run"
    api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=1,
                          train_subset=150, noise="symmetric:0.3", progress="none", out=str(out)))
    return out


def test_a_killed_kfold_run_trains_only_the_missing_folds(run, tmp_path, monkeypatch):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    shutil.copytree(run, whole)
    shutil.copytree(run, cut)
    cfg = dict(detector="kfold", folds=3, cv_epochs=1, grid=0)
    api.labels(LabelsConfig(run=str(whole), **cfg))
    assert not (whole / L.FOLDS_DIR).exists()  # finished: the cache served its purpose
    trained, real = [], L.fit

    def dies_in_the_second_fold(*args, **kw):
        trained.append(1)
        if len(trained) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(L, "fit", dies_in_the_second_fold)
    with pytest.raises(KeyboardInterrupt):
        api.labels(LabelsConfig(run=str(cut), **cfg))
    assert [p.name for p in (cut / L.FOLDS_DIR).iterdir()] == ["fold0of3.pt"]
    trained.clear()
    monkeypatch.setattr(L, "fit", lambda *a, **k: (trained.append(1), real(*a, **k))[1])
    api.labels(LabelsConfig(run=str(cut), **cfg))
    assert len(trained) == 2  # fold 0 was read back, folds 1 and 2 trained
    assert np.array_equal(np.load(cut / "pred_probs.npy"), np.load(whole / "pred_probs.npy"))
    with pytest.raises(KeyboardInterrupt):  # killed again, then asked with another config: nothing read back
        monkeypatch.setattr(L, "fit", dies_in_the_second_fold)
        trained.clear()
        api.labels(LabelsConfig(run=str(cut), **cfg))
    trained.clear()
    monkeypatch.setattr(L, "fit", lambda *a, **k: (trained.append(1), real(*a, **k))[1])
    api.labels(LabelsConfig(run=str(cut), **{**cfg, "cv_epochs": 2}))
    assert len(trained) == 3


def test_a_file_in_the_caches_place_is_refused_before_training(run, tmp_path):
    d = tmp_path / "r"
    shutil.copytree(run, d)
    (d / L.FOLDS_DIR).write_text("mine")
    with pytest.raises(SlimlabError, match="in the way of the k-fold cache"):
        api.labels(LabelsConfig(run=str(d), detector="kfold", folds=3, cv_epochs=1, grid=0))
    (d / L.FOLDS_DIR).unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "fold0of3.pt").write_text("mine")
    (d / L.FOLDS_DIR).symlink_to(elsewhere)  # a planted link: the folds were written (and kept) through it
    with pytest.raises(SlimlabError, match="in the way of the k-fold cache"):
        api.labels(LabelsConfig(run=str(d), detector="kfold", folds=3, cv_epochs=1, grid=0))
    assert [p.read_text() for p in elsewhere.iterdir()] == ["mine"]


def test_the_fold_cache_is_a_run_folder_for_overwrite_and_a_foreign_file_keeps_it(run, tmp_path):
    d = tmp_path / "r"
    shutil.copytree(run, d)
    (d / L.FOLDS_DIR).mkdir()
    (d / L.FOLDS_DIR / "fold0of3.pt").write_bytes(b"x")
    (d / L.FOLDS_DIR / "notes.txt").write_text("mine")
    with pytest.raises(SlimlabError, match="not a slimlab run"):
        claim(d, overwrite=True)
    (d / L.FOLDS_DIR / "notes.txt").unlink()
    with claim(d, overwrite=True) as new_run:  # the old run's files go when the new run starts writing
        new_run.clear()
    assert not (d / L.FOLDS_DIR).exists()


def test_filter_by_chooses_confident_learnings_rule_and_only_for_kfold(run, tmp_path):
    """``--filter-by both`` flags what cleanlab's rule flags on the run's own out-of-sample probabilities (the
    library function on pred_probs.npy); with another detector it is a one-line error before any training."""
    from slimlab.errors import SlimlabError
    from slimlab.noise import find_label_issues

    d = tmp_path / "r"
    shutil.copytree(run, d)
    with pytest.raises(SlimlabError, match="--filter-by is confident learning's rule"):
        api.labels(LabelsConfig(run=str(d), detector="model", filter_by="both", grid=0))
    assert not (d / "label_issues.json").exists()
    report = api.labels(LabelsConfig(run=str(d), detector="kfold", folds=3, cv_epochs=1, filter_by="both", grid=0))
    probs = np.load(d / "pred_probs.npy").astype(np.float64)  # the float32 values the task flagged by
    csv = (d / "label_issues.csv").read_text().splitlines()
    given = {int(r.split(",")[0]): int(r.split(",")[1]) for r in csv[1:]}
    idx = np.array(sorted(given))
    mask = find_label_issues(np.array([given[i] for i in idx]), probs[idx], filter_by="both")
    assert report["flagged"] == int(mask.sum()) and "filter_by both" in report["source"]
    fixed = np.load(d / "corrected_labels.npy")  # the flagged samples, relabelled: the same ones
    assert [i for i in idx if fixed[i] != given[i]] == idx[mask].tolist()
