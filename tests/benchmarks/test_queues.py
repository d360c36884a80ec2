"""benchmarks/queues.sh: two one-thread workers share the remaining jobs (each taken once, a job after its
prerequisites), and latency is timed with the other worker stopped (a measurement beside a training process is
not a quiet one)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, uses setsid and flock")


def _fake_python(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "py"
    fake.write_text("#!/bin/bash\n" + body)
    fake.chmod(0o755)
    return fake


def _env(tmp_path: Path, fake: Path) -> dict:
    return {**os.environ, "PY": str(fake), "SLIMLAB_QUEUE_DIR": str(tmp_path / "q"), "SLIMLAB_QUEUE_WAIT": "0.05"}


def test_one_worker_runs_every_job_in_order_and_stops_the_other_while_timing(tmp_path):
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # worker B: its own process group
    try:
        (tmp_path / "q").mkdir()
        (tmp_path / "q" / "worker-B.pgid").write_text(f"{os.getpgid(other.pid)}\n")
        fake = _fake_python(tmp_path, f"echo \"$OMP_NUM_THREADS $* | $(awk '{{print $3}}' /proc/{other.pid}/stat)\" "
                                      f">> {tmp_path}/calls\n")
        r = subprocess.run(["setsid", "bash", "benchmarks/queues.sh", "A"], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, env=_env(tmp_path, fake))
        assert r.returncode == 0, r.stderr
        calls = (tmp_path / "calls").read_text().splitlines()
        scripts = [c.split()[1].split("/")[1] for c in calls]
        assert scripts == ["prune_whole.py", "noisy_cifar.py", "label_detectors.py", "scaling_claim.py",
                           "rotnet_cifar.py", "noisy_cifar.py", "prune_whole.py", "scaling_claim.py"]
        assert all(c.startswith("1 ") for c in calls)  # one thread
        timed = [c for c in calls if "--latency" in c]
        assert len(timed) == 2 and all(c.endswith("| T") for c in timed)  # the other worker stopped meanwhile
        assert all(c.endswith("| S") for c in calls if "--latency" not in c)
        assert Path(f"/proc/{other.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "SR"  # and continued
        assert not (tmp_path / "q" / "worker-A.pgid").exists()
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    bad = subprocess.run(["bash", "benchmarks/queues.sh", "C"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "A or B" in bad.stderr


def test_two_workers_take_each_job_once_and_wait_for_prerequisites(tmp_path):
    log = tmp_path / "log"
    fake = _fake_python(tmp_path, f"echo \"start $*\" >> {log}; sleep 0.3; echo \"end $*\" >> {log}\n")
    env = _env(tmp_path, fake)
    workers = [subprocess.Popen(["setsid", "bash", "benchmarks/queues.sh", w], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in "AB"]
    outs = [p.communicate(timeout=60) for p in workers]
    assert all(p.returncode == 0 for p in workers), outs
    lines = log.read_text().splitlines()
    starts = [line for line in lines if line.startswith("start")]
    assert len(starts) == len(set(starts)) == 8  # 8 jobs, each once
    assert any("[A]" in o for o, _ in outs) and any("[B]" in o for o, _ in outs)  # both worked
    end_noisy0 = lines.index("end benchmarks/noisy_cifar.py --seeds 1")
    assert lines.index("start benchmarks/label_detectors.py --preset cifar10k-memorise") > end_noisy0
    assert lines.index("start benchmarks/noisy_cifar.py") > end_noisy0
    assert lines.index("start benchmarks/scaling_claim.py --seeds 0,1 --latency") > lines.index(
        "end benchmarks/scaling_claim.py --seeds 0,1")
