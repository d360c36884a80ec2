#!/usr/bin/env bash
# Every benchmark with its CPU-budget defaults, one after another (about 1.5 h on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/train_throughput.py
$PY benchmarks/prune_cifar.py
$PY benchmarks/noisy_cifar.py "$@"
$PY benchmarks/rotnet_cifar.py
$PY benchmarks/efficient_cifar.py
