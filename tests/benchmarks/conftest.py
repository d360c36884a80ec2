"""The benchmark scripts are not a package: tests load them by file name, with benchmarks/ on the path for _util."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def load_bench_script(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_bench():
    """``load_bench("noisy_cifar")``: the script benchmarks/noisy_cifar.py as a module."""
    return load_bench_script
