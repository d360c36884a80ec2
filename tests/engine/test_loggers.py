"""--log tensorboard writes TensorBoard event files holding the epochs of metrics.jsonl; loggers plug in."""

import json
import sys

import pytest

from slimlab import api
from slimlab.config import TrainConfig
from slimlab.engine.loggers import TensorBoardLogger, open_loggers, register_logger
from slimlab.errors import SlimlabError


def test_tensorboard_event_files_hold_the_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    api.train(TrainConfig(data="fake", model="convnet", model_kwargs={"width": 4}, epochs=2, batch_size=64,
                          log=["tensorboard"], out=str(out), progress="none"))
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    got = [(e.step, e.value) for e in acc.Scalars("loss/train_loss")]
    assert got == [(m["epoch"], pytest.approx(m["train_loss"], rel=1e-6)) for m in lines]
    assert "accuracy/val_acc" in acc.Tags()["scalars"]
    # a run with a tensorboard/ folder is still a slimlab run: --overwrite replaces it
    api.train(TrainConfig(data="fake", model="convnet", model_kwargs={"width": 4}, epochs=1, batch_size=64,
                          out=str(out), overwrite=True, progress="none"))
    assert not (out / "tensorboard").exists()


def test_a_logger_plugs_in_and_unknown_ones_are_one_line(tmp_path):
    seen = []

    class Mine:
        def __init__(self, run_dir):
            self.run_dir = run_dir

        def log_epoch(self, m):
            seen.append(m["epoch"])

        def close(self):
            seen.append("closed")

    register_logger("mine", Mine)
    with open_loggers(["mine"], tmp_path) as log:
        log({"epoch": 1})
    assert seen == [1, "closed"]
    with pytest.raises(SlimlabError, match="unknown logger"):
        with open_loggers(["wandb-typo"], tmp_path):
            pass


def test_missing_tensorboard_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(SlimlabError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path)
