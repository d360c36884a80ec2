#!/usr/bin/env bash
# Every benchmark of the current protocols with its CPU-budget defaults, one after another (many hours on 2 cores;
# each script reads back the cells it already finished, so the file can be re-run after an interruption).
# benchmarks/results/README.md says which cells are done, running and left, with their hours.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/train_throughput.py
$PY benchmarks/zoo_gap.py --cells slimlab,minimal   # is the zoo limited by the data copy or the engine?
# pruning (issue 20): each layer alone, then whole networks at 2x fewer MACs with equal fine-tuning
$PY benchmarks/prune_per_layer.py --checkpoint zoo:resnet20-cifar10 --name prune_per_layer_resnet20
$PY benchmarks/prune_per_layer.py --checkpoint zoo:resnet56-cifar10 --name prune_per_layer_resnet56
$PY benchmarks/prune_whole.py --net resnet20
$PY benchmarks/prune_whole.py --net resnet56 --methods thinet,weight_sum --allocations uniform,global,sensitivity
$PY benchmarks/round_to.py      # --round-to 8 at equal MACs: accuracy and latency
# noisy labels (issue 24): where CE memorises (no augmentation, 40 epochs), seed 0 of every row first
$PY benchmarks/noisy_cifar.py --seeds 1
$PY benchmarks/label_detectors.py --preset digits
$PY benchmarks/label_detectors.py --preset cifar10k
$PY benchmarks/label_detectors.py --preset cifar10k-memorise
$PY benchmarks/noisy_cifar.py   # the second seed
# RotNet and compound scaling (issue 23)
$PY benchmarks/rotnet_cifar.py
$PY benchmarks/scaling_claim.py
$PY benchmarks/efficient_cifar.py
$PY benchmarks/demo_time.py     # the main job's wall time and its CE-PENCIL gap
$PY benchmarks/zoo_report.py    # the zoo itself: slimlab run recipes/fast_cifar10.yaml (hours), then make_zoo.py
