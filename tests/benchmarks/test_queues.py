"""benchmarks/queues.sh: two one-thread workers share the remaining jobs (each taken once, a job after its
prerequisites, none after a failed one), and latency is timed with the other worker stopped (a measurement beside
a training process is not a quiet one)."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not all(map(shutil.which, ("setsid", "flock"))),
                                reason="reads /proc, uses setsid and flock")


def _fake_python(tmp_path: Path, body: str) -> Path:
    fake = tmp_path / "py"
    fake.write_text("#!/bin/bash\n" + body)
    fake.chmod(0o755)
    return fake


def _workers(tmp_path: Path, fake: Path, names: str) -> list[tuple[int, str, str]]:
    env = {**os.environ, "PY": str(fake), "SLIMLAB_QUEUE_DIR": str(tmp_path / "q"), "SLIMLAB_QUEUE_WAIT": "0.05"}
    procs = [subprocess.Popen(["setsid", "bash", "benchmarks/queues.sh", w], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in names]
    try:
        outs = [p.communicate(timeout=60) for p in procs]
        return [(p.returncode, *o) for p, o in zip(procs, outs)]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGCONT)
                os.killpg(p.pid, signal.SIGKILL)


def test_one_worker_runs_every_job_in_order_and_stops_the_other_while_timing(tmp_path):
    # worker B: a process group whose leader is a queues.sh (a sleeping stand-in)
    other = subprocess.Popen(["bash", "-c", "sleep 60; : queues.sh"], start_new_session=True)
    try:
        (tmp_path / "q").mkdir()
        (tmp_path / "q" / "worker-B.pgid").write_text(f"{os.getpgid(other.pid)}\n")
        state = f"awk '{{print $3}}' /proc/{other.pid}/stat"
        fake = _fake_python(tmp_path, f"""s=$({state})
case "$*" in *--latency*) for i in $(seq 40); do [ "$s" = T ] && break; sleep 0.05; s=$({state}); done;; esac
echo "$OMP_NUM_THREADS $* | $s" >> {tmp_path}/calls
""")
        ((rc, _, err),) = _workers(tmp_path, fake, "A")
        assert rc == 0, err
        calls = (tmp_path / "calls").read_text().splitlines()
        scripts = [c.split()[1].split("/")[1] for c in calls]
        assert scripts == ["prune_whole.py", "prune_whole.py", "noisy_cifar.py", "noisy_cifar.py",
                           "label_detectors.py", "noisy_cifar.py", "noisy_cifar.py", "rotnet_cifar.py",
                           "scaling_claim.py", "scaling_claim.py", "prune_whole.py", "scaling_claim.py"]
        assert all(c.startswith("1 ") for c in calls)  # one thread
        timed = [c for c in calls if "--latency" in c]
        assert len(timed) == 2 and all(c.endswith("| T") for c in timed)  # the other worker stopped meanwhile
        assert all(c.endswith("| S") for c in calls if "--latency" not in c)
        assert Path(f"/proc/{other.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "SR"  # and continued
        assert not (tmp_path / "q" / "worker-A.pgid").exists()
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()
    bad = subprocess.run(["bash", "benchmarks/queues.sh", "C"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "A or B" in bad.stderr
    env = {k: v for k, v in os.environ.items() if k != "SLIMLAB_QUEUE_DIR"}
    bad = subprocess.run(["bash", "benchmarks/queues.sh", "A"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "one fresh folder per campaign" in bad.stderr


def test_two_workers_take_each_job_once_and_wait_for_prerequisites(tmp_path):
    log = tmp_path / "log"
    fake = _fake_python(tmp_path, f'echo "start $*" >> {log}; sleep 0.3; echo "end $*" >> {log}\n')
    outs = _workers(tmp_path, fake, "AB")
    assert all(rc == 0 for rc, _, _ in outs), outs
    lines = log.read_text().splitlines()
    starts = [line for line in lines if line.startswith("start")]
    assert len(starts) == 12 and len(set(starts)) == 8  # 12 jobs, each once; four benchmarks twice (shared)
    prune = [i for i, line in enumerate(lines) if line.startswith("end benchmarks/prune_whole.py") and "--latency"
             not in line]
    assert len(prune) == 2 and lines.index(next(x for x in starts if "prune_whole.py" in x and "--latency" in x)) > max(
        prune)  # timed once both processes of it ended
    assert all(any(f"[{w}]" in o for _, o, _ in outs) for w in "AB")  # both worked
    end_noisy0 = len(lines) - 1 - lines[::-1].index("end benchmarks/noisy_cifar.py --seeds 1")  # both ended
    assert lines.index("start benchmarks/label_detectors.py --preset cifar10k-memorise") > end_noisy0
    assert lines.index("start benchmarks/noisy_cifar.py") > end_noisy0
    assert lines.index("start benchmarks/scaling_claim.py --seeds 0,1 --latency") > lines.index(
        "end benchmarks/scaling_claim.py --seeds 0,1")


def test_jobs_after_a_failed_prerequisite_are_skipped(tmp_path):
    log = tmp_path / "log"
    fake = _fake_python(tmp_path, f'echo "$*" >> {log}; [ "$*" != "benchmarks/noisy_cifar.py --seeds 1" ]\n')
    ((rc, out, err),) = _workers(tmp_path, fake, "A")
    assert rc == 0, err
    ran = log.read_text().splitlines()
    assert "benchmarks/noisy_cifar.py --seeds 1" in ran and "rc=1" in out
    assert not any("label_detectors" in r for r in ran) and "benchmarks/noisy_cifar.py" not in ran
    assert "detectors skipped: a prerequisite failed" in err and len(ran) == 9
    assert (tmp_path / "q" / "noisy0.failed").exists() and (tmp_path / "q" / "rotnet.done").exists()


def test_a_stale_pgid_file_never_stops_a_stranger(tmp_path):
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)  # took a finished worker's group id
    try:
        (tmp_path / "q").mkdir()
        (tmp_path / "q" / "worker-B.pgid").write_text(f"{os.getpgid(stranger.pid)}\n")
        state = f"$(awk '{{print $3}}' /proc/{stranger.pid}/stat)"
        fake = _fake_python(tmp_path, f'echo "$* | {state}" >> {tmp_path}/c\n')
        ((rc, _, err),) = _workers(tmp_path, fake, "A")
        assert rc == 0, err
        timed = [c for c in (tmp_path / "c").read_text().splitlines() if "--latency" in c]
        assert len(timed) == 2 and all(c.endswith("| S") for c in timed)
    finally:
        stranger.kill()
        stranger.wait()
