"""The layer contract in pyproject.toml holds, and it is not vacuous: an upward import breaks it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(src), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run([str(LINT)], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def copy(tmp_path):
    if not LINT.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    shutil.copytree(ROOT / "src" / "slimlab", tmp_path / "src" / "slimlab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_layers_kept(copy):
    r = _lint(copy / "src", copy)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "1 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("low, high", [("engine/optim.py", "slimlab.tasks.train"),
                                       ("models/registry.py", "slimlab.prune"), ("losses/gce.py", "slimlab.api")])
def test_an_upward_import_breaks_the_contract(copy, low, high):
    f = copy / "src" / "slimlab" / low
    f.write_text(f.read_text() + f"\nimport {high}  # noqa\n")
    r = _lint(copy / "src", copy)
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout[-2000:]
