"""The hostile user's inputs: each ends in exit 2 and one line ``slimlab: error: ...``, never a traceback.

Run in-process through ``slimlab.cli.main.main`` (fast); the subprocess tests in test_cli_errors.py
cover the same path end to end."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
import yaml

from slimlab.cli.main import main, resume_hint
from slimlab.config import TrainConfig, from_dict, in_range

TRAIN = ["train", "--data", "digits", "--model", "convnet", "--epochs", "1", "--progress", "none"]


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse exits itself
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return rc, [x for x in err.splitlines() if x.strip()]


def _one_line(argv: list[str], capsys, needle: str) -> str:
    rc, lines = _run(argv, capsys)
    assert rc == 2, (rc, lines)
    assert len(lines) == 1 and lines[0].startswith("slimlab: error:"), lines
    assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("flags,needle", [
    (["--lr", "-1"], "'lr' must be > 0"),
    (["--lr", "nan"], "'lr' must be > 0"),
    (["--lr", "inf"], "'lr' must be > 0"),
    (["--batch-size", "0"], "'batch_size' must be in [1,"),
    (["--momentum", "-1"], "'momentum' must be in [0, 1)"),
    (["--label-smoothing", "2"], "'label_smoothing'"),
    (["--image-size", "1"], "'image_size' must be in 0 or [8, 4096]"),
    (["--threads", "-1"], "'threads'"),
    (["--milestones", "[abc]"], "'milestones' must be a number"),
    (["--milestones", "[-3]"], "'milestones' must be >= 0"),
    (["--device", "tpu"], "'device' must be auto, cpu, cuda"),
    (["--epochs", "0"], "'epochs' must be in [1,"),
    (["--clean-subset", "-1"], "'clean_subset' must be >= 0"),
    (["--weight-decay", "-1"], "'weight_decay'"),
    (["--val-fraction", "1.5"], "'val_fraction'"),
    (["--eval-every", "-1"], "'eval_every'"),
    (["--optimizer", "adam"], "invalid choice: 'adam'"),
    (["--schedule", "linear"], "invalid choice: 'linear'"),
    (["--epochs", "many"], "invalid int value: 'many'"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag (see `slimlab train --help`)"),
    (["--model-kwargs", "{width_mult: -1}", "--model", "mobilenet_v2"], "'width_mult' must be a number in"),
    (["--model-kwargs", "{width: 0}"], "'width' must be a number in"),
    (["--loss", "forward", "--loss-kwargs", "{matrix: [[1, 0], [0, 1]]}"], "must be 10x10"),
    (["--loss", "forward", "--loss-kwargs", "{matrix: [[a, b]]}"], "matrix of numbers"),
    (["--set", "diverge_factor=0.5"], "'diverge_factor'"),
])
def test_train_bad_input(flags, needle, capsys, tmp_path):
    _one_line(TRAIN + ["--out", str(tmp_path / "r")] + flags, capsys, needle)
    assert not (tmp_path / "r" / "last.pt").exists()


def test_cuda_without_a_gpu(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    _one_line(TRAIN + ["--device", "cuda", "--out", str(tmp_path / "r")], capsys, "no CUDA GPU is available")


def test_noise_matrix_not_numeric(capsys, tmp_path):
    bad = tmp_path / "T.csv"
    bad.write_text("a,b\nc,d\n")
    _one_line(TRAIN + ["--noise", f"matrix:{bad}", "--out", str(tmp_path / "r")], capsys, "not a matrix of numbers")
    bad.write_text("0.5,0.5,0\n0.5,0.5,0\n")
    _one_line(TRAIN + ["--noise", f"matrix:{bad}", "--out", str(tmp_path / "r")], capsys, "square matrix")


@pytest.mark.parametrize("flags,needle", [
    (["--target-macs", "0"], "'target_macs' must be in (0, 1]"),
    (["--keep-ratio", "1.5"], "'keep_ratio' must be in (0, 1]"),
    (["--calib-per-class", "0"], "'calib_per_class'"),
    (["--mode", "greedy"], "invalid choice: 'greedy'"),
])
def test_prune_bad_input(flags, needle, capsys, tmp_path):
    _one_line(["prune", str(tmp_path / "none.pt")] + flags, capsys, needle)


def test_other_commands_ranges(capsys, tmp_path):
    _one_line(["profile", "resnet20", "--batch", "0"], capsys, "'batch' must be in [1, 4096]")
    _one_line(["labels", str(tmp_path), "--folds", "1"], capsys, "'folds' must be in [2, 100]")
    _one_line(["demo", "--epochs", "0", "--out", str(tmp_path / "d")], capsys, "'epochs' must be in [1,")
    _one_line(["models", "--input-size", "100000"], capsys, "'input_size' must be in 0 or [8, 4096]")
    _one_line(["models", "--input-size", "-5"], capsys, "'input_size' must be in 0 or [8, 4096]")
    _one_line(["models", "--family", "nope"], capsys, "--family nope: the families are efficientnet")


def test_missing_subcommand_is_one_line(capsys):
    _one_line([], capsys, "the following arguments are required")


def _recipe(tmp_path: Path, steps) -> str:
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"name": "bad", "steps": steps}))
    return str(p)


@pytest.mark.parametrize("steps,needle", [
    (["train"], "needs a mapping with a name and a kind"),
    ([{"name": "t", "kind": "train", "with": ["epochs", 1]}], "'with' must be a mapping"),
    ([{"name": "../../x", "kind": "models"}], "use a plain name"),
    ([{"name": "/tmp/x", "kind": "models"}], "use a plain name"),
    ([{"name": "a/b", "kind": "models"}], "use a plain name"),
    ([{"name": "t", "kind": "fly"}], "fly"),
])
def test_recipe_bad_steps(steps, needle, capsys, tmp_path):
    recipe = _recipe(tmp_path, steps)
    _one_line(["run", recipe, "--check"], capsys, needle)
    _one_line(["run", recipe, "--out", str(tmp_path / "o")], capsys, needle)


def test_recipe_export_step_without_run(capsys, tmp_path):
    recipe = _recipe(tmp_path, [{"name": "e", "kind": "export", "with": {}}])
    _one_line(["run", recipe, "--out", str(tmp_path / "o")], capsys, "give the run")


def test_recipe_cannot_write_outside_out(capsys, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    recipe = _recipe(tmp_path, [{"name": "l", "kind": "labels", "with": {"run": str(victim)}}])
    _one_line(["run", recipe, "--check"], capsys, "is outside the recipe's --out")
    _one_line(["run", recipe, "--out", str(tmp_path / "o")], capsys, "is outside the recipe's --out")
    assert list(victim.iterdir()) == []


def test_unwritable_output_is_one_line(capsys, tmp_path, monkeypatch):
    """A read-only directory or a full disk: one line, and the files written before are intact."""
    import slimlab.io as sio

    out = tmp_path / "r"
    assert main(TRAIN + ["--epochs", "2", "--stop-after", "1", "--out", str(out)]) == 0
    assert f"stopped after 1 of 2 epochs (--stop-after): `slimlab train --resume {out}`" in capsys.readouterr().out
    before = (out / "last.pt").read_bytes()
    real = sio._atomic

    def full_disk(path, write):
        if str(path).endswith(".pt"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, write)

    monkeypatch.setattr(sio, "_atomic", full_disk)
    _one_line(["train", "--resume", str(out)], capsys, "No space left on device")
    assert (out / "last.pt").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".last.pt")]


def test_yaml_out_with_tilde_is_the_home_directory():
    cfg = from_dict(TrainConfig, {"out": "~/slimlab-x"})
    assert cfg.out == str(Path.home() / "slimlab-x")


def test_range_specs_by_hand():
    assert in_range(0, "0 or [8, 4096]") and in_range(8, "0 or [8, 4096]") and not in_range(7, "0 or [8, 4096]")
    assert in_range(0.0, "[0, 1)") and not in_range(1.0, "[0, 1)") and not in_range(0, "(0, 1]")
    assert in_range(1e-9, "> 0") and not in_range(0, "> 0") and in_range(0, ">= 0")


def test_interrupt_hint_names_the_resuming_command():
    import argparse

    for cmd, out in (("train", "runs/x"), ("pretrain", "runs/p"), ("probe", "runs/q")):
        hint = resume_hint(argparse.Namespace(cmd=cmd, _cfg=TrainConfig(out=out)))
        assert f"slimlab train --resume {out}" in hint
    prune = argparse.Namespace(cmd="prune", _cfg=TrainConfig(out="runs/r"))
    assert "slimlab prune --resume runs/r" in resume_hint(prune)
    from slimlab.engine import rundir

    rundir.CLAIMED.append(Path("runs/digits-resnet20-2"))  # no --out: the directory the run took is named
    assert "train --resume runs/digits-resnet20-2" in resume_hint(argparse.Namespace(cmd="train", _cfg=TrainConfig()))
    rundir.CLAIMED.pop()
    assert "--resume" not in resume_hint(argparse.Namespace(cmd="export"))
    assert "--overwrite" not in resume_hint(argparse.Namespace(cmd="evaluate", _cfg=object()))
    assert "keeps its finished folds" in resume_hint(argparse.Namespace(cmd="labels"))
    assert "same command continues" in resume_hint(argparse.Namespace(cmd="demo"))


def test_a_runs_config_reused_with_config_trains_elsewhere(capsys, tmp_path, monkeypatch):
    """`train --config runs/a/config.yaml` reproduces a run's options; the run's own `out` stays its own (it used to
    point the new run at it, and the error suggested --overwrite, which would have deleted it)."""
    monkeypatch.chdir(tmp_path)
    assert main(TRAIN + ["--train-subset", "100", "--out", "a"]) == 0
    before = (tmp_path / "a" / "best.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--config", "a/config.yaml", "--set", "seed=1"]) == 0
    assert "-> runs/digits-convnet" in capsys.readouterr().out
    assert (tmp_path / "a" / "best.pt").read_bytes() == before


def test_resuming_or_labelling_another_commands_run_names_the_command(capsys, tmp_path):
    """A prune run given to `train --resume` or `labels`, a training run to `prune --resume`: one line naming the
    command that continues it (they listed the other command's options as unknown keys, or said "finished")."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "config.yaml").write_text("# slimlab run 0123456789ab\ncheckpoint: r/best.pt\nmethod: thinet\n"
                                               "allocation: uniform\n")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "config.yaml").write_text("# slimlab run 0123456789ab\ndata: digits\nmodel: convnet\n")
    (tmp_path / "t" / "summary.json").write_text("{}")
    for argv, says in ((["train", "--resume", str(tmp_path / "p")], f"`slimlab prune --resume {tmp_path / 'p'}`"),
                       (["labels", str(tmp_path / "p")], "labels judges a training run's labels"),
                       (["prune", "--resume", str(tmp_path / "t")], f"`slimlab train --resume {tmp_path / 't'}`")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert says in err and "unknown key" not in err and "already finished" not in err, err


@pytest.mark.parametrize("flags, says", [
    (["--noise", "symmetric:0.4", "--noise-mapping", "{7: 1}"], "--noise-mapping is for asymmetric noise"),
    (["--noise-mode", "bernoulli"], "--noise-mode bernoulli needs --noise")])
def test_an_option_the_others_make_meaningless_is_one_line(capsys, flags, says):
    assert main(TRAIN + flags) == 2
    assert says in capsys.readouterr().err
    assert main(["pretrain", "--method", "rotnet", "--data", "digits", "--noise", "symmetric:0.4"]) == 2
    assert "the rotation pretext never reads the labels" in capsys.readouterr().err
