"""The wheel a user installs carries everything slimlab reads at run time: the zoo, the recipes, the command
spec, the profile table. Built from a copy of the project (nothing is written into the checkout), unpacked into an
empty folder and imported from there, away from the project's root."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ["slimlab/cli/commands.json", "slimlab/models/profile_table.json"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = src / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                        "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("slimlab-*.whl")
    return whl


def test_the_wheel_carries_the_zoo_and_the_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    zoo = sorted(p.name for p in (ROOT / "src/slimlab/zoo_models").iterdir() if (p / "model.pt").is_file())
    assert zoo, "the checkout has no zoo entries"
    for entry in zoo:
        for f in ("model.pt", "summary.json", "config.yaml", "metrics.jsonl"):
            assert f"slimlab/zoo_models/{entry}/{f}" in names
    for f in DATA:
        assert f in names
    recipes = sorted(p.name for p in (ROOT / "src/slimlab/recipes").glob("*.yaml"))
    assert recipes and all(f"slimlab/recipes/{r}" in names for r in recipes)


def test_an_installed_wheel_finds_its_zoo_away_from_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installs by unpacking
    code = ("import json, slimlab, torch; from slimlab import zoo; "
            "ck = torch.load(zoo.resolve('zoo:resnet20-cifar10'), weights_only=True); "
            "from slimlab.tasks.run import load_recipe; "
            "print(json.dumps({'file': slimlab.__file__, 'zoo': sorted(zoo.entries()), 'model': ck['model_name'], "
            "'recipe': load_recipe('fast_cifar10')['name']}))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("SLIMLAB_ZOO", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert got["file"].startswith(str(site))  # the unpacked wheel, not the checkout
    assert got["zoo"] == ["resnet20-cifar10", "resnet56-cifar10"] and got["model"] == "resnet20"
    assert got["recipe"] == "fast-cifar10"  # `slimlab run fast_cifar10` works from an installed wheel
