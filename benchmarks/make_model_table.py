"""Rewrite src/slimlab/models/profile_table.json (params and MACs of every registered model) after a model
changes: ``python benchmarks/make_model_table.py``. The test suite recomputes the table and fails if stale."""

from slimlab.io import atomic_write_json
from slimlab.tasks.models import TABLE, build_table

if __name__ == "__main__":
    atomic_write_json(TABLE, build_table())
    print(f"wrote {TABLE}")
