"""``slimlab prune --resume``: a prune killed between layers or during its final fine-tuning continues where it
stopped and ends with the run an uninterrupted prune writes (the same weights, the same accuracies)."""

from __future__ import annotations

import pytest
import torch

from conftest import run_cli
from slimlab import api
from slimlab.config import TrainConfig
from slimlab.engine import load_checkpoint
from slimlab.errors import SlimlabError
from slimlab.prune.config import PruneConfig
from slimlab.tasks import prune as P


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "t"
    api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=1,
                          train_subset=200, progress="none", out=str(out)))
    return out


def _cfg(trained, out) -> PruneConfig:
    return PruneConfig(checkpoint=str(trained), method="thinet", keep_ratio=0.5, ft_per_layer=3, finetune_epochs=2,
                       calib_per_class=4, progress="none", latency=False, out=str(out))


@pytest.fixture(scope="module")
def whole(trained):
    out = trained.parent / "whole"
    return api.prune(_cfg(trained, out)), out


def _dies_at(monkeypatch, n: int) -> dict:
    """The fine-tuning between layers raises KeyboardInterrupt at its n-th call; {"n": calls so far}."""
    calls, real = {"n": 0}, P.LayerFinetune.__call__

    def dies(self, model):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        real(self, model)

    monkeypatch.setattr(P.LayerFinetune, "__call__", dies)
    return calls


def _same_weights(a, b) -> None:
    sa, sb = load_checkpoint(a)["state_dict"], load_checkpoint(b)["state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_killed_between_layers(trained, whole, tmp_path, monkeypatch):
    summary, out = whole
    calls = _dies_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        api.prune(_cfg(trained, tmp_path / "p"))
    assert (tmp_path / "p" / P.STATE).is_file() and not (tmp_path / "p" / "summary.json").exists()
    calls["n"] = -10**6  # counts the resumed run's calls from here on
    got = P.resume(tmp_path / "p")
    assert calls["n"] + 10**6 == len(summary["channels"]) - 1  # the first layer was not pruned again
    assert got["pruned"]["test_acc"] == summary["pruned"]["test_acc"] and got["test_acc"] == summary["test_acc"]
    assert got["channels"] == summary["channels"]
    _same_weights(tmp_path / "p" / "last.pt", out / "last.pt")
    assert not (tmp_path / "p" / P.STATE).exists()  # finished: the progress file is gone
    with pytest.raises(SlimlabError, match="already finished"):
        P.resume(tmp_path / "p")


def test_killed_during_the_final_finetuning(trained, whole, tmp_path, monkeypatch):
    summary, out = whole
    real = P.fit

    def stops_after_one_epoch(model, loaders, objective, cfg, run_dir, *args, **kw):
        if run_dir is None:  # between layers
            return real(model, loaders, objective, cfg, run_dir, *args, **kw)
        real(model, loaders, objective, P.dataclasses.replace(cfg, stop_after=1), run_dir, *args, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "fit", stops_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        api.prune(_cfg(trained, tmp_path / "p"))
    assert load_checkpoint(tmp_path / "p" / "last.pt")["epoch"] == 1
    resumed_from = []

    def records(model, loaders, objective, cfg, run_dir, *args, **kw):
        if run_dir is not None:
            resumed_from.append(kw["resume"]["epoch"])
        return real(model, loaders, objective, cfg, run_dir, *args, **kw)

    monkeypatch.setattr(P, "fit", records)
    got = P.resume(tmp_path / "p")
    assert resumed_from == [1]  # the final fine-tuning went on from its epoch 1
    assert got["test_acc"] == summary["test_acc"]
    _same_weights(tmp_path / "p" / "last.pt", out / "last.pt")


def test_resume_from_the_command_line(trained, tmp_path):
    assert run_cli("prune", str(trained), "--method", "weight_sum", "--keep-ratio", "0.5", "--ft-per-layer", "1",
                   "--finetune-epochs", "0", "--no-latency", "--out", str(tmp_path / "p")).returncode == 0
    r = run_cli("prune", "--resume", str(tmp_path / "p"))
    assert r.returncode == 2 and "already finished" in r.stderr
    r = run_cli("prune")
    assert r.returncode == 2 and "required: checkpoint (or --resume RUN_DIR)" in r.stderr


def test_a_resume_from_a_changed_checkpoint_is_refused(tmp_path, monkeypatch):
    api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=1,
                          train_subset=200, progress="none", out=str(tmp_path / "t")))
    _dies_at(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        api.prune(_cfg(tmp_path / "t", tmp_path / "p"))
    api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=1,
                          train_subset=200, progress="none", seed=1, overwrite=True, out=str(tmp_path / "t")))
    with pytest.raises(SlimlabError, match="from another checkpoint.*checkpoint:"):
        P.resume(tmp_path / "p")


def test_a_prune_refused_before_its_first_layer_leaves_nothing(trained, tmp_path):
    with pytest.raises(SlimlabError, match="no_such_layer"):
        api.prune(PruneConfig(**{**vars(_cfg(trained, tmp_path / "p")), "layers": ["no_such_layer"]}))
    assert not (tmp_path / "p").exists()  # no config.yaml left to make a retry refuse the folder


def test_resume_refusals(trained, tmp_path):
    with pytest.raises(SlimlabError, match="no config.yaml"):
        P.resume(tmp_path)
    (tmp_path / "config.yaml").write_text("method: thinet\n")
    with pytest.raises(SlimlabError, match="no run header"):
        P.resume(tmp_path)
    r = run_cli("prune", "--resume", str(tmp_path), "--method", "l1")
    assert r.returncode == 2 and "--resume continues a run with its own config: drop --method" in r.stderr
    r = run_cli("prune", "--resume", str(tmp_path), "--config", str(tmp_path / "config.yaml"))
    assert r.returncode == 2 and "drop --config" in r.stderr


def test_a_recipe_prune_step_killed_between_layers_resumes_there(trained, whole, tmp_path, monkeypatch):
    from slimlab.tasks.run import RunConfig
    from slimlab.tasks.run import run as run_recipe

    summary, _ = whole
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
name: r
steps:
  - name: prune
    kind: prune
    with: {{checkpoint: "{trained}", method: thinet, keep_ratio: 0.5, ft_per_layer: 3, finetune_epochs: 0,
           calib_per_class: 4, latency: false}}
""")
    run_recipe(RunConfig(recipe=str(recipe), out=str(tmp_path / "whole")))
    calls = _dies_at(monkeypatch, 2)
    cfg = RunConfig(recipe=str(recipe), out=str(tmp_path / "out"))
    with pytest.raises(KeyboardInterrupt):
        run_recipe(cfg)
    calls["n"] = -10**6
    run_recipe(RunConfig(recipe=str(recipe), out=str(tmp_path / "out")))
    assert calls["n"] + 10**6 == len(summary["channels"]) - 1  # resumed after the first layer, not started over
    _same_weights(tmp_path / "out" / "prune" / "last.pt", tmp_path / "whole" / "prune" / "last.pt")


def test_a_prune_that_fails_after_pruning_began_keeps_its_config(trained, tmp_path, monkeypatch):
    def fails(job, meta):
        raise SlimlabError("the fine-tuning diverged")

    monkeypatch.setattr(P, "finetune", fails)
    cfg = PruneConfig(**{**vars(_cfg(trained, tmp_path / "p")), "mode": "oneshot"})  # no progress file
    with pytest.raises(SlimlabError, match="diverged"):
        api.prune(cfg)
    assert (tmp_path / "p" / "config.yaml").is_file()  # a pruned run's directory: resumable, not wiped


def test_train_resume_goes_on_at_the_size_the_run_trained_at(tmp_path):
    """A run whose config asked for one size but whose data was built at another (cifar ignored --image-size before
    2026-12-03) continues at the size it trained at."""
    out = tmp_path / "t"
    first = api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=2,
                                  stop_after=1, train_subset=200, progress="none", out=str(out)))
    assert first["epochs"] == 2 and first["epochs_done"] == 1  # stopped early, and the summary says so
    from slimlab.config import load_yaml

    text = (out / "config.yaml").read_text().replace("image_size: 16", "image_size: 24")
    (out / "config.yaml").write_text(text)
    ck = torch.load(out / "last.pt", weights_only=True)
    ck["config"]["image_size"] = 24  # asked 24, but ck["data"] says it trained at 16
    torch.save(ck, out / "last.pt")
    assert load_yaml(out / "config.yaml")["image_size"] == 24
    s = api.resume(out)
    assert s["macs"] == api.evaluate(api.EvaluateConfig(checkpoint=str(out / "last.pt")))["macs"]
    assert load_checkpoint(out / "last.pt")["data"]["image_size"] == 16
