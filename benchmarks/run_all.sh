#!/usr/bin/env bash
# Every benchmark with its CPU-budget defaults, one after another (many hours on 2 cores; each script skips
# the runs it already finished, so the file can be re-run after an interruption).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/train_throughput.py
$PY benchmarks/prune_cifar.py
$PY benchmarks/noisy_cifar.py   # issue 24's protocol: ResNet-20, 10,000 images, 60 epochs, 2 seeds, one optimiser
# (history: the earlier protocols below wrote noisy_cifar_long/_memorise with the old, confounded settings)
# longer horizons: 40 epochs on 4000 images; and a memorisation regime (ResNet-20, no augmentation)
$PY benchmarks/noisy_cifar.py --train-subset 4000 --epochs 40 --noises symmetric:0.4,symmetric:0.8 \
  --methods ce,gce,sce,pencil,pencil_scaled --no-recipe --name noisy_cifar_long --out runs/bench-noisy-long
$PY benchmarks/noisy_cifar.py --model resnet20 --train-subset 3000 --epochs 30 --no-augment \
  --noises symmetric:0.4,symmetric:0.8 --methods ce,sce,pencil_scaled --no-recipe \
  --name noisy_cifar_memorise --out runs/bench-noisy-memorise
# ThiNet's central comparison (each layer alone), then the whole network at 2x fewer MACs with ThiNet's procedure
$PY benchmarks/prune_per_layer.py --checkpoint zoo:resnet20-cifar10 --name prune_per_layer_resnet20
$PY benchmarks/prune_per_layer.py --checkpoint zoo:resnet56-cifar10 --name prune_per_layer_resnet56
$PY benchmarks/prune_cifar.py --checkpoint zoo:resnet56-cifar10 --ft-layer-epochs 1 --ft-epochs 10 --seeds 2 \
  --methods thinet,thinet_refine,apoz,l1,random --out runs/bench-prune-r56 --name prune_resnet56_thinet_procedure
# issue 13's protocol where noise hurts (CE's last epoch well below its best)
$PY benchmarks/noisy_cifar.py --model resnet20 --train-subset 10000 --epochs 60 --name noisy_cifar_hurts \
  --out runs/bench-noisy-hurts
$PY benchmarks/rotnet_cifar.py
$PY benchmarks/efficient_cifar.py
$PY benchmarks/scaling_claim.py
# issue 20-24 campaigns (see benchmarks/results/README.md for their state and hours)
$PY benchmarks/demo_time.py     # the main job's wall time and its CE-PENCIL gap
$PY benchmarks/round_to.py      # --round-to 8 at equal MACs: accuracy and latency
$PY benchmarks/zoo_gap.py --cells slimlab,minimal   # is the zoo limited by the data copy or the engine?
$PY benchmarks/zoo_report.py   # the zoo itself: slimlab run recipes/fast_cifar10.yaml (hours), then make_zoo.py
