#!/bin/bash
# The evidence campaigns' remaining runs, shared by two workers of one thread each (benchmarks/results/README.md:
# two 1-thread processes train ~25% more images/s on 2 cores than one 2-thread process).
#
#   export PY=/path/to/.venv/bin/python SLIMLAB_QUEUE_DIR=/tmp/slimlab-queue-$(date +%F-%H%M)
#   setsid benchmarks/queues.sh A > queueA.log 2>&1 &
#   setsid benchmarks/queues.sh B > queueB.log 2>&1 &
#
# (setsid: each worker its own process group, which the other stops while it times latency.) A worker stopped
# with SIGKILL runs no cleanup: its job stays taken and the other worker is not continued if it was stopped
# (kill -CONT it); stop workers with SIGTERM or Ctrl-C, or start both again with a fresh SLIMLAB_QUEUE_DIR.
#
# Run both from the root of a git worktree at a fixed commit (its benchmarks/state/ holds the committed state).
# Each worker takes the first job nobody took whose prerequisites are done, so neither core idles while work
# is left; every job resumes where it stopped and skips finished cells, so a fresh SLIMLAB_QUEUE_DIR in a new
# session costs nothing for the jobs already done. Latency is timed again with the other worker stopped
# (SIGSTOP, then SIGCONT): a measurement beside a training process is not a quiet one.
set -u
w=${1:?usage: benchmarks/queues.sh A|B}
case $w in A) other=B ;; B) other=A ;; *) echo "queues.sh: A or B, not $w" >&2; exit 2 ;; esac
export SLIMLAB_BENCH_WORK=benchmarks/state OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$PWD/src
PY=${PY:-python}
Q=${SLIMLAB_QUEUE_DIR:?set SLIMLAB_QUEUE_DIR: one fresh folder per campaign, shared by both workers}
mkdir -p "$Q"
awk '{print $5}' /proc/$$/stat > "$Q/worker-$w.pgid"  # this worker's process group (setsid: its own)

R56="benchmarks/prune_whole.py --net resnet56 --methods thinet,weight_sum --allocations uniform,global,sensitivity"
# A benchmark listed twice (prune56 and prune56b, noisy0 and noisy0b, ...) runs on both workers at once: each
# process takes the cells the other does not hold (_util.claimed), and the last to finish writes the table. One
# campaign's pair before the next: an issue's evidence is finished sooner, the total the same.
# name | prerequisites (names, comma-separated) | how (step or quiet) | the benchmark and its options
JOBS=(
    "prune56||step|$R56"
    "prune56b||step|$R56"
    "noisy0||step|benchmarks/noisy_cifar.py --seeds 1"
    "noisy0b||step|benchmarks/noisy_cifar.py --seeds 1"
    "detectors|noisy0,noisy0b|step|benchmarks/label_detectors.py --preset cifar10k-memorise"
    "noisy1|noisy0,noisy0b|step|benchmarks/noisy_cifar.py"
    "noisy1b|noisy0,noisy0b|step|benchmarks/noisy_cifar.py"
    "rotnet||step|benchmarks/rotnet_cifar.py"  # before scaling: its pretext is one serial run, not a tail
    "scaling||step|benchmarks/scaling_claim.py --seeds 0,1"
    "scalingb||step|benchmarks/scaling_claim.py --seeds 0,1"
    "prune56-latency|prune56,prune56b|quiet|$R56 --latency"
    "scaling-latency|scaling,scalingb|quiet|benchmarks/scaling_claim.py --seeds 0,1 --latency"
)

step() { echo "== [$w] $* $(date)"; $PY "$@"; local rc=$?; [ $rc = 0 ] || echo "rc=$rc"; return $rc; }

paused="" current=""
other_group() {  # the other worker's process group, if it is still a queues.sh worker
    local pg
    pg=$(cat "$Q/worker-$other.pgid" 2>/dev/null)
    [ -n "$pg" ] && [ "$pg" != "$(cat "$Q/worker-$w.pgid")" ] && grep -q queues.sh "/proc/$pg/cmdline" 2>/dev/null \
        && echo "$pg"
}
quiet() {  # the job with the other worker stopped, then continued (also if this worker is killed meanwhile);
    local rc   # one quiet job at a time, so the two workers never stop each other
    exec 8> "$Q/quiet.lock"
    flock 8
    paused=$(other_group)
    if [ -n "$paused" ]; then kill -STOP -- "-$paused"; fi
    step "$@"; rc=$?
    if [ -n "$paused" ]; then kill -CONT -- "-$paused"; paused=""; fi
    flock -u 8
    return $rc
}
cleanup() {
    if [ -n "$paused" ]; then kill -CONT -- "-$paused"; fi
    if [ -n "$current" ] && [ ! -e "$Q/$current.done" ] && [ ! -e "$Q/$current.failed" ]; then
        rm -f "$Q/$current.taken"  # killed mid-job: the job goes back to the list (it resumes where it stopped)
    fi
    rm -f "$Q/worker-$w.pgid"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

take() {  # print the next job (under a lock); 1: none can start now, 2: none left
    (
        flock 9
        local left=0 job name deps d ok
        for job in "${JOBS[@]}"; do
            IFS='|' read -r name deps _ _ <<< "$job"
            [ -e "$Q/$name.taken" ] && continue
            ok=1
            for d in ${deps//,/ }; do
                if [ -e "$Q/$d.failed" ]; then ok=skip; elif [ ! -e "$Q/$d.done" ]; then ok=0; fi
            done
            if [ $ok = skip ]; then  # a prerequisite failed: nothing to build on
                echo "$w $(date)" > "$Q/$name.taken"; echo "prerequisite failed" > "$Q/$name.failed"
                echo "== [$w] $name skipped: a prerequisite failed" >&2; continue
            fi
            left=1
            if [ $ok = 1 ]; then echo "$w $(date)" > "$Q/$name.taken"; echo "$job"; exit 0; fi
        done
        [ $left = 1 ] && exit 1 || exit 2
    ) 9> "$Q/jobs.lock"
}

echo "== worker $w at $(git log --oneline -1)"
while true; do
    job=$(take); rc=$?
    if [ $rc = 2 ]; then break; fi
    if [ $rc = 1 ]; then sleep "${SLIMLAB_QUEUE_WAIT:-60}"; continue; fi
    IFS='|' read -r current _ how cmd <<< "$job"
    # shellcheck disable=SC2086  # the options are words
    if $how $cmd; then echo "$w $(date)" > "$Q/$current.done"; else echo "$w $(date)" > "$Q/$current.failed"; fi
    current=""
done
echo "== worker $w done $(date)"
