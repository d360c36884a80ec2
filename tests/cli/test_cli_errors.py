"""Every user mistake: one line naming the problem, exit code 2, no traceback."""

import pickle

import pytest
import torch

from conftest import run_cli


def _assert_clean_error(r, needle):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_unknown_config_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("epochs: 2\nlearning_rate: 0.1\n")
    _assert_clean_error(run_cli("train", "--config", str(cfg)), "unknown key(s) learning_rate")


def test_wrong_type_via_set():
    _assert_clean_error(run_cli("train", "--set", "epochs=many"), "'epochs' must be int")


def test_missing_config_file(tmp_path):
    _assert_clean_error(run_cli("train", "--config", str(tmp_path / "no.yaml")), "config file not found")


def test_missing_data_path(tmp_path):
    _assert_clean_error(run_cli("train", "--data", f"imagefolder:{tmp_path}/nope"), "data path not found")
    r = run_cli("train", "--data", "imagefolder:../nope", cwd=tmp_path)  # a relative path says where it looked
    _assert_clean_error(r, f"a relative path, looked for from {tmp_path}")


def test_empty_class_folder(tiny_folder):
    for f in (tiny_folder / "train" / "emu").iterdir():
        f.unlink()
    _assert_clean_error(run_cli("train", "--data", f"imagefolder:{tiny_folder}"), "empty class folder")


def test_corrupt_image(tiny_folder):
    (tiny_folder / "test" / "cat" / "bad.jpg").write_bytes(b"\x00garbage")
    _assert_clean_error(run_cli("train", "--data", f"imagefolder:{tiny_folder}"), "unreadable image")


def test_unknown_model_and_loss():
    _assert_clean_error(run_cli("train", "--model", "resnet21"), "unknown model 'resnet21'")
    _assert_clean_error(run_cli("train", "--data", "fake", "--loss", "huber"), "unknown loss 'huber'")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    r = run_cli("train", "--data", "fake", "--model", "convnet", "--model-kwargs", "{width: 8}", "--epochs", "1",
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_checkpoint_of_another_architecture(trained, tmp_path):
    ck = torch.load(trained / "best.pt", weights_only=True)
    ck["model_kwargs"] = {"width": 16}
    torch.save(ck, tmp_path / "other.pt")
    _assert_clean_error(run_cli("evaluate", str(tmp_path / "other.pt")), "does not match the model's architecture")


def test_checkpoint_with_wrong_classes(trained, tiny_folder):
    r = run_cli("evaluate", str(trained / "best.pt"), "--data", f"imagefolder:{tiny_folder}")
    _assert_clean_error(r, "predicts 10 classes but tiny has 3")
    _assert_clean_error(run_cli("evaluate", str(trained / "best.pt"), "--data", "digits"), "was trained on classes")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_malicious_checkpoint_does_not_run_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "slimlab-checkpoint-1", "x": _Evil()}, f)
    r = run_cli("evaluate", str(path), cwd=tmp_path)
    _assert_clean_error(r, "cannot load checkpoint")
    assert not (tmp_path / "PWNED").exists()


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").write_text("hello")
    _assert_clean_error(run_cli("evaluate", str(tmp_path / "x.pt")), "is not a PyTorch checkpoint")
    _assert_clean_error(run_cli("evaluate", str(tmp_path / "none.pt")), "checkpoint not found")


def test_resume_of_non_run_dir(tmp_path):
    _assert_clean_error(run_cli("train", "--resume", str(tmp_path)), "not a run directory")


def test_config_roundtrip_with_set(trained, tmp_path):
    r = run_cli("train", "--config", str(trained / "config.yaml"), "--set", "epochs=2", "--set",
                f"out={tmp_path / 'again'}")
    assert r.returncode == 0, r.stderr
    assert "epochs: 2" in (tmp_path / "again" / "config.yaml").read_text()


def test_models_and_profile_commands():
    r = run_cli("models")
    assert r.returncode == 0 and "resnet56" in r.stdout and "efficientnet_b0" in r.stdout
    r = run_cli("profile", "resnet20", "--batch", "1", "--iters", "3")
    assert r.returncode == 0 and "0.270M params, 40.55M MACs" in r.stdout, r.stdout + r.stderr


def test_profile_times_runs_side_by_side_from_the_command_line(trained, tmp_path):
    """`slimlab profile --runs A B` (the README's form) writes profile.json; a model and --runs, or neither, is
    one line."""
    import json

    r = run_cli("profile", "--runs", str(trained), str(trained), "--out", str(tmp_path), "--no-onnx", "--iters", "2")
    assert r.returncode == 0, r.stderr
    assert list(json.loads((tmp_path / "profile.json").read_text())) == [str(trained)]  # one row per run
    for argv in (("profile",), ("profile", "resnet20", "--runs", str(trained))):
        _assert_clean_error(run_cli(*argv), "give a model (a name, checkpoint or run directory) or --runs")


def test_cifar_without_files_says_to_download(tmp_path):
    _assert_clean_error(run_cli("train", "--data", "cifar10", "--root", str(tmp_path)), "pass --download")
