"""Engine overhead: images/s of ``slimlab.engine.fit`` against a minimal hand-written loop.

ResNet-20 on the CIFAR-10 copy, batch 128, CPU, the same images, augmentation and optimiser;
the runs alternate (engine, hand, engine, ...) and the median of each is compared.
Usage: python benchmarks/train_throughput.py [--steps 40] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _util import cifar_spec, md_table, write  # noqa: E402
from slimlab import data as D  # noqa: E402
from slimlab.config import TrainConfig  # noqa: E402
from slimlab.engine import Loaders, fit  # noqa: E402
from slimlab.losses import Objective  # noqa: E402
from slimlab.models import create_model  # noqa: E402


def hand_loop(ds, idx, steps, bs, seed) -> float:
    torch.manual_seed(seed)
    model = create_model("resnet20", 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    mean = torch.tensor(ds.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(ds.std).view(1, 3, 1, 1) * 255
    g = torch.Generator().manual_seed(seed)
    perm = idx[torch.randperm(len(idx), generator=g)]
    model.train()
    t0 = time.perf_counter()
    for i in range(steps):
        b = perm[i * bs: (i + 1) * bs]
        x = D.random_crop_flip(ds.train.images[b], 4, True, g)
        x = (x.float() - mean) / std
        loss = F.cross_entropy(model(x), ds.train.targets[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * bs / (time.perf_counter() - t0)


def engine_loop(ds, idx, bs, seed) -> float:
    torch.manual_seed(seed)
    model = create_model("resnet20", 10)
    cfg = TrainConfig(epochs=1, batch_size=bs, lr=0.1, schedule="cosine", progress="none", seed=seed)
    loader = D.BatchLoader(ds.train, idx, bs, mean=ds.mean, std=ds.std, shuffle=True, augment=True, drop_last=True,
                           seed=seed)
    with tempfile.TemporaryDirectory() as tmp:  # includes writing metrics and checkpoints
        s = fit(model, Loaders(loader), Objective(), cfg, tmp)
    return s["images_per_s"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    ds = D.build(cifar_spec())
    idx = torch.arange(a.steps * a.batch)
    hand_loop(ds, idx, 3, a.batch, 0)  # warm-up
    eng, hand = [], []
    for r in range(a.reps):
        eng.append(engine_loop(ds, idx, a.batch, r))
        hand.append(hand_loop(ds, idx, a.steps, a.batch, r))
        print(f"rep {r}: engine {eng[-1]:.1f} img/s, hand {hand[-1]:.1f} img/s", flush=True)
    e, h = statistics.median(eng), statistics.median(hand)
    overhead = (h - e) / h
    rows = [["engine (slimlab.engine.fit)", f"{e:.1f}"], ["minimal hand-written loop", f"{h:.1f}"],
            ["engine overhead", f"{100 * overhead:.1f}%"]]
    table = (f"ResNet-20, CIFAR-10 copy, batch {a.batch}, {a.steps} steps x {a.reps} reps, CPU "
             f"({torch.get_num_threads()} threads)\n\n" + md_table(["loop", "images/s (median)"], rows))
    write("train_throughput", {"engine_images_per_s": eng, "hand_images_per_s": hand, "overhead": overhead,
                               "steps": a.steps, "batch": a.batch}, table)


if __name__ == "__main__":
    main()
