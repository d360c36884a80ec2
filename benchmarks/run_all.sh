#!/usr/bin/env bash
# Every benchmark with its CPU-budget defaults, one after another (about 3 h on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/train_throughput.py
$PY benchmarks/prune_cifar.py
$PY benchmarks/noisy_cifar.py
# longer horizons: 40 epochs on 4000 images; and a memorisation regime (ResNet-20, no augmentation)
$PY benchmarks/noisy_cifar.py --train-subset 4000 --epochs 40 --noises symmetric:0.4,symmetric:0.8 \
  --methods ce,gce,sce,pencil,pencil_scaled --no-recipe --name noisy_cifar_long --out runs/bench-noisy-long
$PY benchmarks/noisy_cifar.py --model resnet20 --train-subset 3000 --epochs 30 --no-augment \
  --noises symmetric:0.4,symmetric:0.8 --methods ce,sce,pencil_scaled --no-recipe \
  --name noisy_cifar_memorise --out runs/bench-noisy-memorise
$PY benchmarks/rotnet_cifar.py
$PY benchmarks/efficient_cifar.py
$PY benchmarks/zoo_report.py   # the zoo itself: slimlab run recipes/fast_cifar10.yaml (hours), then make_zoo.py
