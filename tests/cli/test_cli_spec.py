"""The command line is built from a shipped table (no torch for --help), which must equal the task table;
run --check finds missing inputs before anything runs."""

import json
import subprocess
import sys

import yaml

from conftest import run_cli
from slimlab.cli.main import SPEC, command_spec


def test_the_shipped_command_table_is_current():
    shipped = json.loads(SPEC.read_text())
    assert shipped == json.loads(json.dumps(command_spec())), (
        "src/slimlab/cli/commands.json is stale: regenerate it with `python -m slimlab.cli.main --write-spec`")


def test_help_does_not_import_torch():
    code = ("import sys\nfrom slimlab.cli.main import main\n"
            "for argv in (['--help'], ['train', '--help'], ['prune', '--help'], ['run', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, argv\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr
    assert "--round-to" in subprocess.run([sys.executable, "-m", "slimlab", "prune", "--help"], capture_output=True,
                                          text=True, timeout=60).stdout


def test_run_check_fails_on_a_missing_data_path_or_checkpoint(tmp_path):
    recipe = {"name": "r", "steps": [
        {"name": "train", "kind": "train", "with": {"data": f"imagefolder:{tmp_path / 'nope'}", "epochs": 1}}]}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(recipe))
    r = run_cli("run", str(tmp_path / "a.yaml"), "--check")
    assert r.returncode == 2 and "step train: data folder not found" in r.stderr
    recipe = {"name": "r", "steps": [
        {"name": "train", "kind": "train", "with": {"data": "fake", "epochs": 1}},
        {"name": "prune", "kind": "prune", "with": {"checkpoint": "${train}/best.pt"}},
        {"name": "other", "kind": "evaluate", "with": {"checkpoint": str(tmp_path / "missing.pt")}}]}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(recipe))
    r = run_cli("run", str(tmp_path / "b.yaml"), "--check")
    assert r.returncode == 2 and "step other: checkpoint not found" in r.stderr, r.stderr
    recipe["steps"].pop()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(recipe))
    r = run_cli("run", str(tmp_path / "c.yaml"), "--check")
    assert r.returncode == 0 and "2 steps valid" in r.stdout  # an earlier step's output is not yet there: fine
