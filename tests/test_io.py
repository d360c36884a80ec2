"""Atomic writes: the file a user finds has the permissions open() would give, not mkstemp's private 0600."""

import os
import stat

from slimlab.io import atomic_write_json, atomic_write_text


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_a_new_file_follows_the_umask_and_a_replaced_one_keeps_its_mode(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "summary.json", {"a": 1})
        assert _mode(tmp_path / "summary.json") == 0o644  # mkstemp alone gives 0600
        with open(tmp_path / "plain.txt", "w") as f:  # what a plain open() gives, for comparison
            f.write("x")
        assert _mode(tmp_path / "plain.txt") == _mode(tmp_path / "summary.json")
        os.chmod(tmp_path / "summary.json", 0o640)
        atomic_write_text(tmp_path / "summary.json", "{}")
        assert _mode(tmp_path / "summary.json") == 0o640 and (tmp_path / "summary.json").read_text() == "{}"
    finally:
        os.umask(old)
