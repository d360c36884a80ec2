"""Fault tests: a run owns its directory (lock, run id, no mixing), divergence stops a run before it
poisons a checkpoint, and a torn ``metrics.jsonl`` line does not break ``--resume``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from conftest import ListLoader
from slimlab.cli.main import main
from slimlab.config import TrainConfig
from slimlab.engine import Loaders, Objective, fit, load_checkpoint
from slimlab.engine.fit import check_divergence, first_non_finite
from slimlab.engine.rundir import claim, config_run_id, lock, next_free
from slimlab.errors import SlimlabError

TRAIN = ["train", "--data", "digits", "--model", "convnet", "--model-kwargs", "{width: 8}", "--progress", "none"]


def _digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def _err(argv, capsys) -> tuple[int, list[str]]:
    rc = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, [x for x in err.splitlines() if x.strip()]


def _refused(argv, capsys, needle: str) -> None:
    rc, lines = _err(argv, capsys)
    assert rc == 2 and len(lines) == 1 and needle in lines[0], lines


def _stopped_run(out: Path, capsys, *flags: str) -> Path:
    """A 3-epoch run stopped after its first epoch (a run to resume)."""
    assert main(TRAIN + ["--epochs", "3", "--stop-after", "1", "--out", str(out), *flags]) == 0
    capsys.readouterr()
    return out


def _as_written_before_run_ids(config: Path) -> None:
    config.write_text("\n".join(config.read_text().splitlines()[1:]) + "\n")


def test_issue_reproduction_refused_and_first_run_intact(tmp_path, capsys):
    """The issue's case 1: a second run into R is refused, and resuming R leaves the first run's files intact."""
    r = tmp_path / "R"
    assert main(TRAIN + ["--epochs", "3", "--seed", "3", "--out", str(r)]) == 0
    capsys.readouterr()
    first = _digest(r)
    rc, lines = _err(TRAIN + ["--epochs", "5", "--seed", "9", "--lr", "0.01", "--out", str(r)], capsys)
    assert rc == 2 and len(lines) == 1 and "already holds a run" in lines[0] and "--overwrite" in lines[0]
    rc, lines = _err(["train", "--resume", str(r)], capsys)
    assert rc == 2 and len(lines) == 1 and "already finished its 3 epochs" in lines[0]
    assert _digest(r) == first
    run_id = config_run_id(r / "config.yaml")
    assert run_id and load_checkpoint(r / "last.pt")["run_id"] == run_id
    assert json.loads((r / "summary.json").read_text())["run_id"] == run_id
    assert {json.loads(x)["run_id"] for x in (r / "metrics.jsonl").read_text().splitlines()} == {run_id}


def test_a_run_killed_before_its_summary_finishes_on_resume(tmp_path, capsys):
    """Killed after the last epoch's last.pt but before summary.json: --resume trains no epoch, evaluates and
    writes the summary (it used to refuse: 'already finished'), with the figures the full run would have written."""
    r = tmp_path / "R"
    assert main(TRAIN + ["--epochs", "2", "--out", str(r)]) == 0
    capsys.readouterr()
    done = json.loads((r / "summary.json").read_text())
    last = (r / "last.pt").read_bytes()
    (r / "summary.json").unlink()
    assert main(["train", "--resume", str(r)]) == 0
    again = json.loads((r / "summary.json").read_text())
    assert again["test_acc"] == done["test_acc"] and again["best_val_acc"] == done["best_val_acc"]
    assert again["test_acc_at_best_val"] == done["test_acc_at_best_val"]
    assert again["train_s"] == pytest.approx(done["train_s"]) and again["wall_s"] >= done["train_s"]  # both runs' time
    assert (r / "last.pt").read_bytes() == last  # no epoch was trained again
    assert len((r / "metrics.jsonl").read_text().splitlines()) == 2


def test_overwrite_starts_clean(tmp_path, capsys):
    r = tmp_path / "R"
    assert main(TRAIN + ["--epochs", "3", "--out", str(r)]) == 0
    old = config_run_id(r / "config.yaml")
    assert main(TRAIN + ["--epochs", "2", "--out", str(r), "--overwrite"]) == 0
    new = config_run_id(r / "config.yaml")
    lines = [json.loads(x) for x in (r / "metrics.jsonl").read_text().splitlines()]
    assert new != old and [m["epoch"] for m in lines] == [1, 2] and {m["run_id"] for m in lines} == {new}


def test_resume_refuses_a_directory_that_mixes_two_runs(tmp_path, capsys):
    a, b = _stopped_run(tmp_path / "A", capsys), _stopped_run(tmp_path / "B", capsys, "--lr", "0.01")
    (b / "last.pt").write_bytes((a / "last.pt").read_bytes())  # B's directory now holds A's checkpoint
    _refused(["train", "--resume", str(b)], capsys, "mixes two runs")
    # a run written before run ids: the config comparison still catches it, and names the key
    _as_written_before_run_ids(b / "config.yaml")
    _refused(["train", "--resume", str(b)], capsys, "lr: 0.01 in config.yaml, 0.1 in last.pt")


def test_resume_refuses_another_architecture_without_traceback(tmp_path, capsys):
    a = _stopped_run(tmp_path / "A", capsys)
    ck = torch.load(a / "last.pt", weights_only=True)
    ck.pop("run_id")
    ck["config"]["model_kwargs"] = {"width": 8}
    ck["state_dict"] = {k: v[:4] if v.dim() else v for k, v in ck["state_dict"].items()}
    torch.save(ck, a / "last.pt")
    _as_written_before_run_ids(a / "config.yaml")
    _refused(["train", "--resume", str(a)], capsys, "another architecture")


def test_resume_cannot_change_what_the_run_computes(tmp_path, capsys):
    a = _stopped_run(tmp_path / "A", capsys)
    rc, lines = _err(["train", "--resume", str(a), "--set", "lr=0.5"], capsys)
    assert rc == 2 and "--resume cannot change lr" in lines[0]
    rc, lines = _err(["train", "--resume", str(a), "--lr", "0.5"], capsys)
    assert rc == 2 and "drop --lr" in lines[0]
    # the folder a resume writes is its own: --set out= was once accepted and silently ignored
    rc, lines = _err(["train", "--resume", str(a), "--set", f"out={tmp_path / 'B'}"], capsys)
    assert rc == 2 and "drop --set out=" in lines[0] and not (tmp_path / "B").exists()
    assert main(["train", "--resume", str(a), "--set", "epochs=2"]) == 0  # the length may change


def test_a_folder_that_is_not_a_run_is_never_overwritten(tmp_path, capsys):
    d = tmp_path / "notes"
    d.mkdir()
    (d / "summary.json").write_text("my own notes")
    (d / "thesis.tex").write_text("precious")
    for extra in ([], ["--overwrite"]):
        rc, lines = _err(TRAIN + ["--epochs", "1", "--out", str(d)] + extra, capsys)
        assert rc == 2 and "not empty and not a slimlab run" in lines[0]
    assert (d / "summary.json").read_text() == "my own notes" and (d / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("extra", ["sensitivity.json", "corrected_labels.json", "corrected_labels.npy"])
def test_files_slimlab_writes_beside_a_run_do_not_make_it_foreign(tmp_path, extra):
    # prune --allocation sensitivity writes sensitivity.json, labels writes corrected_labels.*: a run holding them
    # is still a slimlab run, replaced by --overwrite (a killed sensitivity prune could not be restarted)
    d = tmp_path / "r"
    d.mkdir()
    for name in ("config.yaml", extra):
        (d / name).write_text("# slimlab run 0123456789ab\nx: 1\n")
    with claim(d, overwrite=True) as run:
        assert (d / extra).exists()  # nothing goes before the command has loaded its inputs
        run.clear()
    assert not (d / extra).exists() and not (d / "config.yaml").exists()


def test_default_output_gets_a_numbered_suffix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(TRAIN + ["--epochs", "1"]) == 0
    assert (tmp_path / "runs" / "digits-convnet" / "last.pt").is_file()
    assert (tmp_path / "runs" / "digits-convnet-2" / "last.pt").is_file()
    assert next_free(tmp_path / "runs" / "digits-convnet") == tmp_path / "runs" / "digits-convnet-3"


def test_lock_refuses_a_second_writer(tmp_path, capsys):
    d = tmp_path / "R"
    held = claim(d)
    with pytest.raises(SlimlabError, match=r"another slimlab process \(pid \d+\) is writing to"):
        claim(d)
    rc, lines = _err(TRAIN + ["--epochs", "1", "--out", str(d)], capsys)
    assert rc == 2 and len(lines) == 1 and "another slimlab process" in lines[0]
    held.release()
    with lock(d):  # free again once released
        pass


def test_lock_across_processes(tmp_path):
    """A real second process (``flock`` between processes), and the lock dies with its holder."""
    import subprocess
    import sys

    d = tmp_path / "R"
    code = ("import sys, time; from slimlab.engine.rundir import lock; l = lock(sys.argv[1]); "
            "print('held', flush=True); time.sleep(30)")
    p = subprocess.Popen([sys.executable, "-c", code, str(d)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(SlimlabError, match=f"pid {p.pid}"):
            lock(d)
    finally:
        p.kill()
        p.wait()
    with lock(d):
        pass


def test_torn_metrics_line_resumes(tmp_path, capsys):
    a = tmp_path / "A"
    assert main(TRAIN + ["--epochs", "3", "--stop-after", "2", "--out", str(a)]) == 0
    with open(a / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "lr": 0.0')  # a write cut short
    assert main(["train", "--resume", str(a)]) == 0
    lines = [json.loads(x) for x in (a / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2, 3]


class _Poison(Objective):
    """Cross-entropy that sets a weight to NaN after the last step of the second epoch (an injected divergence)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.epoch = self.step = 0

    def on_epoch_start(self, epoch: int) -> None:
        self.epoch, self.step = epoch, 0

    def after_step(self, batch) -> None:
        self.step += 1
        if self.epoch == 1 and self.step == 2:
            with torch.no_grad():
                self.model[0].weight[0, 0] = float("nan")


def _loader(n: int = 64) -> ListLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 8, 8, generator=g), torch.arange(n) % 4
    return ListLoader([{"image": x[s], "target": y[s], "index": torch.arange(n)[s]}
                       for s in (slice(0, n // 2), slice(n // 2, n))])


def test_divergence_stops_before_a_poisoned_checkpoint(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(4))
    model(torch.zeros(1, 3, 8, 8))
    cfg = TrainConfig(epochs=3, lr=0.01, amp=False, channels_last=False, progress="none")
    with pytest.raises(SlimlabError, match=r"diverged in epoch 2: 0.weight holds NaN"):
        fit(model, Loaders(_loader()), _Poison(model), cfg, tmp_path)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 1 and first_non_finite_sd(last["state_dict"]) is None
    assert [json.loads(x)["epoch"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1]


def first_non_finite_sd(sd: dict) -> str | None:
    return next((k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)


def test_divergence_catches_inf_bn_statistics_and_loss_growth():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert first_non_finite(model) is None
    model[1].running_var[2] = float("inf")
    assert first_non_finite(model) == "1.running_var"
    with pytest.raises(SlimlabError, match="1.running_var holds NaN or inf"):
        check_divergence(model, {"epoch": 4, "train_loss": 1.0}, [], 10.0)
    model[1].running_var[2] = 1.0
    hist = [{"train_loss": 2.0}]
    check_divergence(model, {"epoch": 2, "train_loss": 19.9}, hist, 10.0)  # under 10x: fine
    with pytest.raises(SlimlabError, match="over 10x the first epoch's"):
        check_divergence(model, {"epoch": 2, "train_loss": 20.1}, hist, 10.0)
    check_divergence(model, {"epoch": 2, "train_loss": 1e9}, hist, 0.0)  # 0: never


def test_huge_learning_rate_is_caught(tmp_path, capsys):
    """The issue's case 2: --lr 1e6 kept a finite loss and exited 0 with a poisoned last.pt. With ResNet-20 the
    loss stays finite (1e11) through epoch 1, and epoch 2 leaves BN's running variance infinite (measured)."""
    out = tmp_path / "R"
    rc, lines = _err(["train", "--data", "digits", "--model", "resnet20", "--train-subset", "300", "--epochs", "2",
                      "--lr", "1e6", "--progress", "none", "--out", str(out)], capsys)
    assert rc == 2 and len(lines) == 1 and "training diverged in epoch 2" in lines[0], lines
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 1 and first_non_finite_sd(last["state_dict"]) is None


def test_overwrite_is_not_written_into_the_config(tmp_path, capsys):
    import yaml

    r = tmp_path / "R"
    assert main(TRAIN + ["--epochs", "1", "--out", str(r)]) == 0
    assert main(TRAIN + ["--epochs", "1", "--out", str(r), "--overwrite"]) == 0
    assert yaml.safe_load((r / "config.yaml").read_text())["overwrite"] is False
    assert load_checkpoint(r / "last.pt")["config"]["overwrite"] is False


def test_overwrite_drops_a_recipe_done_marker(tmp_path, capsys):
    r = tmp_path / "R"
    assert main(TRAIN + ["--epochs", "1", "--out", str(r)]) == 0
    (r / "step.json").write_text('{"hash": "old"}')
    assert main(TRAIN + ["--epochs", "1", "--out", str(r), "--overwrite"]) == 0
    assert not (r / "step.json").exists()


def test_config_difference_ignores_options_added_later_and_run_length():
    from slimlab.tasks.train import config_difference

    old = {"lr": 0.1, "epochs": 5, "model": "convnet"}  # written before diverge_factor and overwrite existed
    assert config_difference(old, {"lr": 0.1, "epochs": 9, "model": "convnet", "overwrite": True,
                                   "diverge_factor": 10.0}) is None
    assert config_difference(old, {"lr": 0.2, "model": "convnet"}) == ("lr", 0.1, 0.2)


def test_resume_refuses_a_best_pt_of_another_run_and_a_checkpoint_without_optimizer(tmp_path, capsys):
    a, b = _stopped_run(tmp_path / "A", capsys), _stopped_run(tmp_path / "B", capsys)
    (b / "best.pt").write_bytes((a / "best.pt").read_bytes())
    _refused(["train", "--resume", str(b)], capsys, "best.pt is from run")
    ck = torch.load(a / "last.pt", weights_only=True)
    del ck["optimizer"]
    torch.save(ck, a / "last.pt")
    _refused(["train", "--resume", str(a)], capsys, "lacks optimizer")


def test_out_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    _refused(TRAIN + ["--epochs", "1", "--out", str(tmp_path / "f" / "sub")], capsys, "Not a directory")
    _refused(TRAIN + ["--epochs", "1", "--out", str(tmp_path / "f")], capsys, "is a file, not a directory")


def test_ddp_refusal_stops_every_rank(tmp_path):
    """Rank 0 refuses a non-empty --out; rank 1 must stop with the same line instead of waiting in a collective."""
    import os
    import subprocess
    import sys

    r = tmp_path / "R"
    r.mkdir()
    (r / "notes.txt").write_text("mine")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        str(32500 + os.getpid() % 1000), "-m", "slimlab", *TRAIN, "--epochs", "1", "--threads", "1",
                        "--out", str(r)], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert p.stderr.count("slimlab: error: --out") == 2 and "not a slimlab run" in p.stderr, p.stderr[-2000:]
    assert (r / "notes.txt").read_text() == "mine"


def test_a_refused_run_leaves_no_directory_behind(tmp_path):
    """A command that fails before writing anything removes the directory (and the parents) it created for its
    run; a directory that was there before, or that the run wrote into, stays."""
    from conftest import run_cli

    r = run_cli("train", "--data", "imagefolder:/no/such/folder", cwd=tmp_path)
    assert r.returncode == 2 and "not found" in r.stderr
    assert list(tmp_path.iterdir()) == []  # neither runs/<name> nor runs/
    (tmp_path / "mine").mkdir()
    r = run_cli("train", "--data", "imagefolder:/no/such/folder", "--out", str(tmp_path / "mine"))
    assert r.returncode == 2 and (tmp_path / "mine").is_dir()  # the user's own folder is kept
    assert list((tmp_path / "mine").iterdir()) == []  # with no lock file of ours left in it
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "train.py").write_text("print('mine')\n")
    r = run_cli("train", "--data", "digits", "--out", str(tmp_path / "code"))  # refused: not a run's folder
    assert r.returncode == 2 and sorted(e.name for e in (tmp_path / "code").iterdir()) == ["train.py"]
    d = claim(tmp_path / "a" / "b")
    (d.path / "config.yaml").write_text("x: 1\n")
    d.release()
    assert (tmp_path / "a" / "b" / "config.yaml").is_file()


def test_overwrite_never_follows_a_link_nor_deletes_a_users_swap_file(tmp_path, capsys):
    """--overwrite (and recipes, and --resume of a run without last.pt, which overwrite) deletes run files only:
    a run-file name linking to a folder is refused with the folder intact; a link to a file loses the link, not
    the file; an editor's .config.yaml.swp stays."""
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    (tmp_path / "notes.txt").write_text("mine")
    r = _stopped_run(tmp_path / "r", capsys)
    (r / "best.pt").unlink()
    (r / "best.pt").symlink_to(user, target_is_directory=True)
    _refused(TRAIN + ["--epochs", "1", "--out", str(r), "--overwrite"], capsys, "not a slimlab run")
    (r / "last.pt").unlink()
    (r / "summary.json").unlink()
    _refused(["train", "--resume", str(r)], capsys, "not a slimlab run")  # no last.pt: a resume starts over
    assert (user / "thesis.tex").read_text() == "years of work"
    (r / "best.pt").unlink()
    (r / "best.pt").symlink_to(tmp_path / "notes.txt")
    (r / ".config.yaml.swp").write_text("vim")
    assert main(TRAIN + ["--epochs", "1", "--out", str(r), "--overwrite"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine" and (r / ".config.yaml.swp").read_text() == "vim"
    assert not (r / "best.pt").is_symlink()  # the link went; the new run wrote its own best.pt


def test_overwrite_keeps_a_users_own_config_yaml(tmp_path, capsys):
    mine = tmp_path / "proj"
    mine.mkdir()
    (mine / "config.yaml").write_text("lr: 0.1  # my notes\n")
    _refused(TRAIN + ["--epochs", "1", "--out", str(mine), "--overwrite"], capsys, "not a slimlab run")
    assert (mine / "config.yaml").read_text() == "lr: 0.1  # my notes\n"
    r = _stopped_run(tmp_path / "r", capsys)  # a run's config.yaml (its header names the run) is replaced
    for f in r.iterdir():
        if f.name != "config.yaml":
            f.unlink()
    assert main(TRAIN + ["--epochs", "1", "--out", str(r), "--overwrite"]) == 0


def test_overwrite_deletes_only_a_run_whose_config_names_it_and_only_once_the_inputs_loaded(tmp_path, capsys):
    """Files that merely carry run-file names (no config.yaml with a run's header line) are never deleted by
    --overwrite, nor by --resume of a folder without last.pt; a command that fails before writing (a missing
    --init) leaves the old run whole; a folder holding only hidden files (.git) is not empty."""
    mine = tmp_path / "otherproj"
    mine.mkdir()
    for name in ("best.pt", "model.onnx", "summary.json"):
        (mine / name).write_text("mine")
    _refused(TRAIN + ["--epochs", "1", "--out", str(mine), "--overwrite"], capsys, "no slimlab run's config.yaml")
    (mine / "config.yaml").write_text("lr: 0.1\n")
    (mine / "summary.json").unlink()
    _refused(["train", "--resume", str(mine)], capsys, "not a run's (no run header line)")
    assert sorted(p.name for p in mine.iterdir()) == ["best.pt", "config.yaml", "model.onnx"]
    r = _stopped_run(tmp_path / "r", capsys)
    before = _digest(r)
    rc, lines = _err(TRAIN + ["--epochs", "1", "--out", str(r), "--overwrite", "--init", str(tmp_path / "nope.pt")],
                     capsys)
    assert rc == 2 and _digest(r) == before  # refused after the claim, before any deletion
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    _refused(TRAIN + ["--epochs", "1", "--out", str(repo)], capsys, "not empty and not a slimlab run (it holds .git)")
    assert sorted(p.name for p in repo.iterdir()) == [".git"]


def test_prune_never_overwrites_the_folder_holding_its_own_source(tmp_path, capsys):
    r = _stopped_run(tmp_path / "r", capsys)
    before = _digest(r)
    _refused(["prune", str(r), "--out", str(r), "--overwrite", "--method", "l1", "--progress", "none"], capsys,
             "holds the checkpoint being pruned")
    assert _digest(r) == before


def test_resume_refuses_fewer_epochs_than_the_run_already_trained(tmp_path, capsys):
    r = _stopped_run(tmp_path / "r", capsys, "--epochs", "3", "--stop-after", "2")
    _refused(["train", "--resume", str(r), "--set", "epochs=1"], capsys, "already trained 2 epochs")


def test_train_never_overwrites_the_folder_holding_its_init(tmp_path, capsys):
    r = _stopped_run(tmp_path / "r", capsys)
    before = _digest(r)
    _refused(TRAIN + ["--epochs", "1", "--init", str(r / "last.pt"), "--out", str(r), "--overwrite"], capsys,
             "holds --init")
    assert _digest(r) == before


def test_a_prune_refused_on_its_inputs_leaves_the_run_it_would_replace_whole(tmp_path, capsys):
    """prune --overwrite that fails while loading (a missing --labels-from) deleted the old run's config.yaml,
    leaving a run that could neither be resumed nor replaced (found by a review, 2026-12-04)."""
    r = _stopped_run(tmp_path / "r", capsys)
    prune = ["prune", str(r / "last.pt"), "--method", "l1", "--no-latency", "--progress", "none", "--allocation",
             "sensitivity", "--target-macs", "0.7", "--out", str(tmp_path / "p")]
    assert main(prune) == 0
    capsys.readouterr()
    before = _digest(tmp_path / "p")
    rc, _ = _err(prune + ["--overwrite", "--labels-from", str(tmp_path / "nowhere")], capsys)
    assert rc == 2 and _digest(tmp_path / "p") == before
    assert "sensitivity.json" in before and "config.yaml" in before
    _refused(prune + ["--overwrite", "--sensitivity", str(tmp_path / "p" / "sensitivity.json")], capsys,
             "holds --sensitivity")
    assert _digest(tmp_path / "p") == before


def test_the_lock_is_never_opened_through_a_link(tmp_path, capsys):
    notes = tmp_path / "thesis.txt"
    notes.write_text("years of work")
    run = tmp_path / "shared"
    run.mkdir()
    (run / ".slimlab.lock").symlink_to(notes)
    _refused(TRAIN + ["--epochs", "1", "--out", str(run)], capsys, "cannot be opened as slimlab's lock")
    assert notes.read_text() == "years of work"
    dangling = tmp_path / "empty"
    dangling.mkdir()
    (dangling / ".slimlab.lock").symlink_to(tmp_path / "made-outside")
    _refused(TRAIN + ["--epochs", "1", "--out", str(dangling)], capsys, "cannot be opened as slimlab's lock")
    assert not (tmp_path / "made-outside").exists()


def test_prune_of_a_checkpoint_outside_a_run_writes_under_runs(tmp_path, capsys, monkeypatch):
    import shutil

    r = _stopped_run(tmp_path / "r", capsys)
    (tmp_path / "models").mkdir()
    shutil.copy(r / "last.pt", tmp_path / "models" / "mine.pt")
    monkeypatch.chdir(tmp_path)
    prune = ["prune", "--method", "l1", "--no-latency", "--progress", "none", "--finetune-epochs", "0"]
    assert main([*prune[:1], "models/mine.pt", *prune[1:]]) == 0
    assert (tmp_path / "runs" / "mine-weight_sum" / "summary.json").is_file()
    assert main([*prune[:1], str(r), *prune[1:]]) == 0  # a run's checkpoint: beside its run, as before
    assert (tmp_path / "r-weight_sum" / "summary.json").is_file()
