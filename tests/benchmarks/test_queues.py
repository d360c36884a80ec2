"""benchmarks/queues.sh: each queue runs its steps in order on one thread, and times latency with the other
queue stopped (a measurement beside a training process is not a quiet one)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_queue_a_runs_its_steps_and_stops_queue_b_while_timing(tmp_path):
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # queue B: its own process group
    try:
        (tmp_path / "slimlab-queue-B.pgid").write_text(f"{os.getpgid(other.pid)}\n")
        fake = tmp_path / "py"
        fake.write_text(f"#!/bin/bash\necho \"$OMP_NUM_THREADS $* | $(awk '{{print $3}}' /proc/{other.pid}/stat)\" "
                        f">> {tmp_path}/calls\n")
        fake.chmod(0o755)
        r = subprocess.run(["bash", "benchmarks/queues.sh", "A"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PY": str(fake), "SLIMLAB_QUEUE_DIR": str(tmp_path)})
        assert r.returncode == 0, r.stderr
        calls = (tmp_path / "calls").read_text().splitlines()
        assert [c.split()[1] for c in calls] == ["benchmarks/prune_whole.py"] * 2 + ["benchmarks/rotnet_cifar.py"]
        assert all(c.startswith("1 ") for c in calls)  # one thread
        assert calls[1].endswith("--latency | T") and calls[0].endswith("| S") and calls[2].endswith("| S")
        time.sleep(0.1)
        assert _state(other.pid) in "SR"  # continued afterwards
        assert not (tmp_path / "slimlab-queue-A.pgid").exists()
        bad = subprocess.run(["bash", "benchmarks/queues.sh", "C"], cwd=ROOT, capture_output=True, text=True)
        assert bad.returncode == 2 and "A or B" in bad.stderr
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
