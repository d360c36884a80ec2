"""Is the zoo's ResNet-20 limited by the data copy or by slimlab's engine? (issue 20, item 2)

Two cells train ResNet-20 on the same CIFAR-10 image folder with the same schedule (20 epochs,
batch 128, SGD lr 0.1 with Nesterov momentum 0.9, weight decay 5e-4 on every parameter, one
warm-up epoch then cosine to 0 per step, random crop with 4-pixel zero padding and horizontal flip):

- ``minimal``: an independent loop that imports nothing from slimlab: ``torchvision.datasets.ImageFolder``,
  ``torchvision.transforms``, its own ResNet-20 (He et al., option A shortcuts), fp32, a plain
  ``torch.utils.data.DataLoader`` and a plain SGD loop;
- ``slimlab``: ``slimlab train`` with its defaults for this recipe (bf16 autocast where the CPU has it,
  channels-last, batched augmentation on tensors).

Within 0.5 points, the data sets the ceiling; otherwise the engine differs. Each cell is resumable:
the minimal loop saves ``last.pt`` after every epoch, the slimlab cell is a run directory
(``slimlab train --resume``). Finished cells are read from their JSON.

    python benchmarks/zoo_gap.py [--epochs 20] [--cells minimal,slimlab]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import CIFAR, RESULTS, bench_dir, machine, md_table  # noqa: E402

WORK = bench_dir("zoo_gap")


# ---- an independent ResNet-20 (He et al. 2016, Sec. 4.2, option A) ----
class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        s = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.extra:
            s = F.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return F.relu(y + s)


class ResNet20(nn.Module):
    def __init__(self, n: int = 3, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(Block(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1))


def lr_at(step: int, steps_per_epoch: int, epochs: int, base: float = 0.1, warmup: float = 1.0) -> float:
    """Linear warm-up for ``warmup`` epochs, then cosine to 0 (per step)."""
    t, w, total = step / steps_per_epoch, warmup, epochs
    if t < w:
        return base * (step + 1) / (w * steps_per_epoch)
    return 0.5 * base * (1 + math.cos(math.pi * (t - w) / (total - w)))


class InMemory(torch.utils.data.Dataset):
    """An ImageFolder decoded once into PIL images; the transform runs per sample, as torchvision's would."""

    def __init__(self, folder: Path, transform):
        from torchvision.datasets import ImageFolder

        src = ImageFolder(str(folder))
        self.items = [(src.loader(p).copy(), y) for p, y in src.samples]
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        im, y = self.items[i]
        return self.transform(im), y


def minimal(epochs: int, seed: int = 0) -> dict:
    from torchvision import transforms as T

    out = WORK / f"minimal-e{epochs}-s{seed}"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's usual statistics
    train = InMemory(CIFAR / "train", T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                                                 T.ToTensor(), T.Normalize(mean, std)]))
    test = InMemory(CIFAR / "test", T.Compose([T.ToTensor(), T.Normalize(mean, std)]))
    model = ResNet20()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    start, log = 0, []
    if (out / "last.pt").is_file():
        st = torch.load(out / "last.pt", weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start, log = st["epoch"], json.loads(st["log"])
        print(f"minimal: resumed after epoch {start}", flush=True)
    spe = len(train) // 128
    for epoch in range(start, epochs):
        g = torch.Generator().manual_seed(seed * 1000 + epoch)
        loader = torch.utils.data.DataLoader(train, batch_size=128, shuffle=True, drop_last=True, generator=g)
        torch.manual_seed(seed * 1000 + epoch)  # the transforms' randomness
        model.train()
        t0, seen, correct, loss_sum = time.time(), 0, 0, 0.0
        for i, (x, y) in enumerate(loader):
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * spe + i, spe, epochs)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(y)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss) * len(y)
        acc = evaluate(model, test)
        log.append({"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen, "test_acc": acc,
                    "epoch_s": time.time() - t0})
        print(f"minimal: epoch {epoch + 1}/{epochs} train {100 * correct / seen:.2f}% test {100 * acc:.2f}% "
              f"({time.time() - t0:.0f} s)", flush=True)
        tmp = out / "last.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1, "log": json.dumps(log)},
                   tmp)
        os.replace(tmp, out / "last.pt")
    return {"test_acc": log[-1]["test_acc"], "train_acc": log[-1]["train_acc"], "epochs": epochs, "log": log,
            "params": sum(p.numel() for p in model.parameters()), "precision": "fp32",
            "median_epoch_s": sorted(e["epoch_s"] for e in log)[len(log) // 2]}


@torch.no_grad()
def evaluate(model: nn.Module, test) -> float:
    model.eval()
    loader = torch.utils.data.DataLoader(test, batch_size=500)
    correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    return correct / len(test)


def slimlab_cell(epochs: int, seed: int = 0) -> dict:
    from slimlab import api
    from slimlab.config import TrainConfig

    out = WORK / f"slimlab-e{epochs}-s{seed}-all"  # -all: every training image, as the minimal loop (no val split)
    if (out / "summary.json").is_file():
        s = json.loads((out / "summary.json").read_text())
    elif (out / "last.pt").is_file():
        s = api.resume(out)
    else:
        s = api.train(TrainConfig(data=f"imagefolder:{CIFAR}", model="resnet20", epochs=epochs, batch_size=128,
                                  lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="cosine",
                                  warmup_epochs=1.0, seed=seed, val_fraction=0.0, out=str(out), progress="log",
                                  eval_every=epochs))
    log = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    from slimlab.engine.fit import cpu_has_fast_bf16

    amp = cpu_has_fast_bf16()  # the config's amp is on (the default); autocast runs where the CPU has native bf16
    return {"test_acc": s["test_acc"], "train_acc": log[-1]["train_acc"], "epochs": epochs, "params": s["params"],
            "precision": "bf16 autocast" if amp else "fp32",
            "median_epoch_s": sorted(e["epoch_s"] for e in log)[len(log) // 2]}


CELLS = {"minimal": minimal, "slimlab": slimlab_cell}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--cells", default="minimal,slimlab")
    args = ap.parse_args()
    path = RESULTS / "zoo_gap.json"
    done = json.loads(path.read_text()) if path.is_file() else {"cells": {}}
    for name in args.cells.split(","):
        key = f"{name}-e{args.epochs}" + ("-all" if name == "slimlab" else "")
        if key in done["cells"]:
            print(f"{key}: done ({100 * done['cells'][key]['test_acc']:.2f}%)")
            continue
        done["cells"][key] = CELLS[name](args.epochs)
        done["machine"] = machine()
        path.write_text(json.dumps(done, indent=2) + "\n")
    report(done, args.epochs)


PUBLISHED_R20 = 91.25  # He et al. 2016, Table 6: ResNet-20, 164 epochs (64k iterations) on the original images


def verdict(cells: dict, epochs: int) -> str | None:
    """What the two loops say about the zoo's gap, or None until both cells are done."""
    a, b = cells.get(f"minimal-e{epochs}"), cells.get(f"slimlab-e{epochs}-all")
    if not (a and b):
        return None
    gap = 100 * (b["test_acc"] - a["test_acc"])
    rest = (f"what separates the zoo's ResNet-20 from He et al.'s {PUBLISHED_R20}% is the schedule (40 epochs "
            "against 164) and the data copy (JPEG re-encoded against the original PNGs), not separated here")
    if gap < -0.5:
        return (f"slimlab - minimal = {gap:+.2f} points. The engine is not the limit: **does not hold**, it loses to "
                "a plain fp32 loop, a cause to find (augmentation, bf16, BatchNorm, schedule).")
    how = "within 0.5 points of" if gap <= 0.5 else f"{gap:.2f} points above"
    return (f"slimlab - minimal = {gap:+.2f} points. The engine is not the limit: **holds**. slimlab's engine "
            "(bf16 autocast, channels-last, batched "
            f"augmentation) is {how} an independent fp32 loop on the same images and schedule "
            f"({100 * b['test_acc']:.2f}% against {100 * a['test_acc']:.2f}% after {epochs} epochs); {rest}.")


def report(done: dict, epochs: int) -> None:
    cells, m = done["cells"], done["machine"]
    held = " (45,000 images: a 10% validation split held out; not compared)"
    rows = [[k + (held if k == f"slimlab-e{epochs}" else ""), c["precision"], c["params"],
             f"{100 * c['train_acc']:.2f}", f"{100 * c['test_acc']:.2f}", f"{c['median_epoch_s']:.0f} s"]
            for k, c in cells.items()]
    rows.append(["He et al. 2016, Table 6 (164 epochs, original images)", "fp32 (GPU)", "0.27M", "-",
                 f"{PUBLISHED_R20:.2f}", "-"])
    text = (f"# The zoo's gap: ResNet-20, {epochs} epochs, the same schedule, two loops\n\n"
            f"CPU: {m.get('cpu_model', m['cpu'])}, {m['threads']} threads. The cells train on all 50,000 images "
            "of the CIFAR-10 copy (but the one marked) and report the last epoch on all 10,000 test images. Epoch "
            "times are inflated where other work shared the CPU.\n\n"
            + md_table(["cell", "precision", "params", "train acc (%)", "test acc (%)", "per epoch"], rows) + "\n")
    v = verdict(cells, epochs)
    if v:
        text += f"\n{v}\n"
    (RESULTS / "zoo_gap.md").write_text(text)
    print(text)

if __name__ == "__main__":
    main()
