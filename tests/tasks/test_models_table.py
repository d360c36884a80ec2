"""`slimlab models` reads a shipped table: it must equal a fresh measurement of every registered model."""

import json
import time

from conftest import run_cli
from slimlab.tasks.models import TABLE, build_table


def test_shipped_table_is_current():
    assert json.loads(TABLE.read_text()) == build_table()  # stale: python benchmarks/make_model_table.py


def test_models_answers_quickly_from_the_table():
    t0 = time.time()
    r = run_cli("models")
    assert r.returncode == 0, r.stderr
    assert "0.27M" in r.stdout and "efficientnet_b7" in r.stdout
    assert time.time() - t0 < 8  # torch's import dominates; measuring every model took 10-40 s
