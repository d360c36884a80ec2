"""benchmarks/collect_state.py copies a worktree's new benchmark files back, with only the checkpoints a later
step needs."""

import subprocess


def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def test_only_needed_checkpoints_and_no_locks_come_back(tmp_path, load_bench):
    collect = load_bench("collect_state")
    wt = tmp_path / "wt"
    (wt / "benchmarks" / "results").mkdir(parents=True)
    (wt / "benchmarks" / "results" / "README.md").write_text("old\n")
    _git(wt, "init", "-q")
    _git(wt, "-c", "user.email=a@b", "-c", "user.name=a", "add", ".")
    _git(wt, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x")
    (wt / "benchmarks" / "results" / "README.md").write_text("changed there\n")
    (wt / "benchmarks" / "results" / "noisy_cifar_partial.md").write_text("table\n")
    noisy = wt / "benchmarks" / "state" / "bench-noisy-v3-e40"
    for run, done in (("symmetric0.4-ce-s0", True), ("symmetric0.4-gce-s0", True),
                      ("symmetric0.4-pencil-s0", True), ("symmetric0.4-sce-s0", False)):
        (noisy / run).mkdir(parents=True)
        for f in ("config.yaml", "best.pt", "last.pt", ".slimlab.lock"):
            (noisy / run / f).write_text("x")
        if done:
            (noisy / run / "summary.json").write_text("{}")
    got = dict(collect.plan(wt))
    copied = {p.split("bench-noisy-v3-e40/")[-1] for p, c in got.items() if c and p.endswith(".pt")}
    assert copied == {"symmetric0.4-ce-s0/best.pt", "symmetric0.4-ce-s0/last.pt", "symmetric0.4-pencil-s0/last.pt",
                      "symmetric0.4-pencil-s0/best.pt", "symmetric0.4-sce-s0/best.pt", "symmetric0.4-sce-s0/last.pt"}
    rot = wt / "benchmarks" / "state" / "bench-rotnet-v3"
    for run in ("rotnet", "probe-linear-block1"):
        (rot / run).mkdir(parents=True)
        for f in ("best.pt", "last.pt", "summary.json"):
            (rot / run / f).write_text("x")
    kept = {p for p, c in collect.plan(wt) if c and "bench-rotnet" in p and p.endswith(".pt")}
    assert kept == {"benchmarks/state/bench-rotnet-v3/rotnet/last.pt"}  # the probes' start, nothing else
    assert got["benchmarks/results/noisy_cifar_partial.md"] and not got["benchmarks/results/README.md"]
    assert not any(c for p, c in got.items() if p.endswith(".slimlab.lock"))
    assert got["benchmarks/state/bench-noisy-v3-e40/symmetric0.4-gce-s0/summary.json"]
