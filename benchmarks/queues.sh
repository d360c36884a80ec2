#!/bin/bash
# The evidence campaigns' remaining runs, as two queues of one thread each (benchmarks/results/README.md:
# two 1-thread processes train ~25% more images/s on 2 cores than one 2-thread process).
#
#   PY=/path/to/.venv/bin/python benchmarks/queues.sh A > queueA.log 2>&1 &
#   PY=/path/to/.venv/bin/python benchmarks/queues.sh B > queueB.log 2>&1 &
#
# Run both from the root of a git worktree at a fixed commit (its benchmarks/state/ holds the committed
# state; every step resumes where it stopped and skips finished cells). Latency is timed again with the other
# queue paused: a measurement beside a training process is not a quiet one.
set -u
q=${1:?usage: benchmarks/queues.sh A|B}
case $q in A) other=B ;; B) other=A ;; *) echo "queues.sh: A or B, not $q" >&2; exit 2 ;; esac
export SLIMLAB_BENCH_WORK=benchmarks/state OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$PWD/src
PY=${PY:-python}
RUN=${SLIMLAB_QUEUE_DIR:-/tmp}
ps -o pgid= -p $$ | tr -d ' ' > "$RUN/slimlab-queue-$q.pgid"

step() { echo "== $* $(date)"; "$PY" "$@" || echo "rc=$?"; }

quiet() {  # the step with the other queue stopped (SIGSTOP), then continued
    local pg
    pg=$(cat "$RUN/slimlab-queue-$other.pgid" 2>/dev/null)
    if [ -n "$pg" ] && kill -0 -- "-$pg" 2>/dev/null; then kill -STOP -- "-$pg"; else pg=""; fi
    step "$@"
    if [ -n "$pg" ]; then kill -CONT -- "-$pg"; fi
}

echo "== queue $q at $(git log --oneline -1)"
if [ "$q" = A ]; then
    step benchmarks/prune_whole.py --net resnet56 --methods thinet,weight_sum --allocations uniform,global,sensitivity
    quiet benchmarks/prune_whole.py --net resnet56 --methods thinet,weight_sum --allocations uniform,global,sensitivity --latency
    step benchmarks/rotnet_cifar.py
else
    step benchmarks/noisy_cifar.py --seeds 1
    step benchmarks/label_detectors.py --preset cifar10k-memorise
    step benchmarks/scaling_claim.py --seeds 0,1
    quiet benchmarks/scaling_claim.py --seeds 0,1 --latency
    step benchmarks/noisy_cifar.py
fi
rm -f "$RUN/slimlab-queue-$q.pgid"
echo "== queue $q done $(date)"
