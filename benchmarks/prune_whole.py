"""Whole networks at about 2x fewer MACs, every method with one fine-tuning budget: the zoo's ResNet-20 and
ResNet-56 on CIFAR-10 (issue 20, items 3 and 6).

A cell is (network, criterion, allocation, seed). It prunes the zoo model to at most ``--target-macs`` of its
MACs with ``slimlab prune`` (layer by layer, ``--ft-layer-epochs`` of fine-tuning at lr 0.001 after each pruned
layer, as ThiNet does, then BatchNorm re-estimated on 1,000 augmented training images), and fine-tunes the
result with ``slimlab train --init`` for ``--ft-epochs`` (SGD, cosine from ``--ft-lr``, the zoo recipe's augmentation).
Every row of a network sees the same number of fine-tuning images: per-layer plus final. The seed changes
the calibration images, ThiNet's samples, random's draws and the fine-tuning order. Nothing is chosen on the
test set: rows report the last epoch.

Each cell is resumable: the prune stage is one run directory (``prune --resume`` keeps the layers pruned so far,
each saved with its fine-tuning), the fine-tuning another (``train --resume`` continues it bit-exactly from
``last.pt``); a finished cell is read from the results JSON and never rerun.
Latency (eager PyTorch and ONNX Runtime, batch 1 and 64, 1 thread, models interleaved) is timed once the
cells are done, per distinct architecture; ``--latency`` times them again on a quiet machine.

    python benchmarks/prune_whole.py --net resnet20                      # 4 criteria x seeds 0,1
    python benchmarks/prune_whole.py --net resnet56 --methods thinet,weight_sum --allocations uniform,global,sensitivity
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import (  # noqa: E402
    RESULTS,
    bench_dir,
    cached_prune,
    cached_train,
    cifar_spec,
    claimed,
    locked,
    machine,
    machine_line,
    machines_note,
    md_table,
    usual_machine,
)

WORK = bench_dir("prune_whole")
NETS = {"resnet20": "zoo:resnet20-cifar10", "resnet56": "zoo:resnet56-cifar10"}

# ResNet-56 on CIFAR-10 at about 2x fewer FLOPs (baseline -> pruned, top-1 %), and where each was checked:
# the papers' tables themselves could not be read here (2026-12-03), so each row says what it was checked against
PUBLISHED = [
    ("DepGraph, no sparse training (Fang et al., CVPR 2023)", 93.53, 93.46, "2.11x speed-up",
     "the official Torch-Pruning benchmark README"),
    ("HRank (Lin et al., CVPR 2020)", 93.26, 93.17, "50.0% fewer FLOPs", "the official README (93.17, 62.72M FLOPs)"),
    ("FPGM (He et al., CVPR 2019)", 93.59, 93.26, "1.70x speed-up, Torch-Pruning's count",
     "the Torch-Pruning benchmark README; secondary tables put the paper's row at 52.6% fewer FLOPs"),
    ("FPGM (He et al., CVPR 2019)", 93.59, 92.93, "52.6% fewer FLOPs",
     "secondary tables only (FPGM's own FLOPs script gives 52.4% at its 40% rate)"),
    ("Channel pruning (He, Zhang & Sun, ICCV 2017)", 92.80, 91.80, "2x", "secondary tables only"),
    ("ThiNet, as reported in DCP (Zhuang et al., NeurIPS 2018, Table 1)", None, -0.82, "1.99x", "not found"),
]


def cell_name(method: str, alloc: str, seed: int) -> str:
    return f"{method}-{alloc}-s{seed}"


def prune_stage(net: str, method: str, alloc: str, seed: int, a, d: Path, target: float) -> dict:
    """The pruned model (with per-layer fine-tuning and BatchNorm re-estimation) in ``d/prune``."""
    from slimlab.prune.config import PruneConfig

    return cached_prune(PruneConfig(checkpoint=NETS[net], data=cifar_spec(), method=method, target_macs=target,
                                    allocation=alloc, ft_layer_epochs=a.ft_layer_epochs, finetune_epochs=0,
                                    seed=seed, latency=False, progress="log", out=str(d / "prune")))


def bn_augmented(cell: dict) -> dict:
    """A cell pruned before BatchNorm re-estimation drew augmented images (slimlab before 2026-12-03 used
    un-augmented ones, which lowers accuracy: see ``slimlab.tasks.prune.calibration_images``) gets the column
    re-measured as today's code computes it: the saved pruned model, its statistics re-estimated on the same
    1,000 images, augmented as in training. Only that column changes: fine-tuning trains on batch statistics,
    so its result does not depend on the running statistics it starts from."""
    if cell.get("bn_augmented") is not None or cell.get("pruned_acc_no_bn") is None:
        return cell
    pruned = cell_dir(cell) / "prune"
    if not (pruned / "best.pt").is_file():
        print(f"{cell['dir']}: no pruned model here; its BatchNorm column stays as measured (un-augmented)")
        return cell
    import dataclasses

    from slimlab.config import TrainConfig, from_dict, load_yaml
    from slimlab.engine import evaluate, load_checkpoint
    from slimlab.engine.distributed import Dist
    from slimlab.models.io import model_from_checkpoint
    from slimlab.prune.bn_recalibration import batches_of, recalibrate_bn
    from slimlab.tasks.common import make_loaders, prepare_data
    from slimlab.tasks.prune import calibration_images

    ck = load_checkpoint(pruned / "best.pt")
    cfg = dataclasses.replace(from_dict(TrainConfig, ck["config"], "pruned checkpoint"), data=cifar_spec())
    p, model = prepare_data(cfg), model_from_checkpoint(ck)
    n = int(load_yaml(pruned / "config.yaml").get("bn_images", 1000))
    recalibrate_bn(model, batches_of(calibration_images(p, n, cell["seed"], cfg.augment)))
    acc = evaluate(model, make_loaders(cfg, p, Dist()).test)["acc"]
    before = {"pruned_acc_bn_unaugmented": cell["pruned_acc"]} if cfg.augment else {}
    return dict(cell, **before, pruned_acc=acc, bn_augmented=cfg.augment)


def finetune_stage(a, d: Path, seed: int) -> dict:
    """``--ft-epochs`` of fine-tuning from the pruned model, with the recipe the pruning run recorded (a finished
    run is read back, one cut short resumes: ``cached_train``)."""
    from slimlab.config import TrainConfig, from_dict, to_dict
    from slimlab.engine import load_checkpoint

    init = d / "prune" / "best.pt"
    start = to_dict(from_dict(TrainConfig, load_checkpoint(init)["config"], "pruned checkpoint"))
    kw = {k: v for k, v in start.items() if k not in ("out", "progress")}
    kw.update(init=str(init), epochs=a.ft_epochs, lr=a.ft_lr, seed=seed, overwrite=True,
              train_subset=a.train_subset or start["train_subset"])
    return cached_train(d / "ft", **kw)


def run_cell(net: str, method: str, alloc: str, seed: int, a, cells: dict) -> dict:
    d = work_dir(net, a) / cell_name(method, alloc, seed)
    target = a.target_macs
    if alloc != "uniform":  # compared at the MACs the uniform ratio reached, not at the nominal target
        u = cells[cell_name(method, "uniform", 0)]
        target = u["macs"] / u["macs_base"]
    p = prune_stage(net, method, alloc, seed, a, d, target)
    f = finetune_stage(a, d, seed)
    per_layer = len(p["channels"]) * a.ft_layer_epochs
    return {"method": method, "allocation": alloc, "seed": seed, "base_acc": p["original"]["test_acc"],
            "params": p["params"], "macs": p["macs"], "macs_base": p["original"]["macs"],
            "params_base": p["original"]["params"], "pruned_acc_no_bn": p["pruned"].get("test_acc_before_bn"),
            "pruned_acc": p["pruned"]["test_acc"], "bn_augmented": p["pruned"].get("bn_augmented"),
            "final_acc": f["test_acc"], "channels": p["channels"],
            "predicted_drop": p.get("allocation", {}).get("predicted_drop"), "sensitivity_split": _split(d),
            "ft_epochs_equiv": per_layer + a.ft_epochs, "prune_s": p["prune_s"], "ft_wall_s": f.get("wall_s"),
            "dir": str(d.relative_to(WORK)), "machine": machine()}


def _split(d: Path) -> str | None:
    """Which images the sensitivity profile of a cell was measured on (None: not a sensitivity cell)."""
    f = d / "prune" / "sensitivity.json"
    return json.loads(f.read_text()).get("split") if f.is_file() else None


def cell_dir(c: dict) -> Path:
    """A cell's run directory (recorded relative to the bench folder; cells of 2026-12-03 recorded it whole)."""
    return WORK / c["dir"]


def latency(cells: dict, net: str) -> dict:
    """Eager and ONNX Runtime latency at batch 1 and 64 (1 thread, interleaved) per distinct architecture."""
    import tempfile
    from functools import partial

    import torch

    from slimlab.engine import load_checkpoint
    from slimlab.export import onnx_runners
    from slimlab.models.io import model_from_checkpoint
    from slimlab.profile.latency import timed_many
    from slimlab.zoo import resolve

    models = {"unpruned": model_from_checkpoint(load_checkpoint(resolve(NETS[net]))).eval()}
    for c in cells.values():
        ck = cell_dir(c) / "ft" / "last.pt"
        if arch_key(c) in models:
            continue
        if not ck.is_file():
            print(f"{ck}: not here, so {arch_key(c)} is not timed")
            continue
        models[arch_key(c)] = model_from_checkpoint(load_checkpoint(ck)).eval()
    out: dict = {k: {} for k in models}
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for b in (1, 64):
            with torch.inference_mode():
                eager = timed_many({k: partial(m, torch.randn(b, 3, 32, 32)) for k, m in models.items()}, warmup=3)
            with tempfile.TemporaryDirectory() as tmp:
                runners = onnx_runners({k: (m, 32) for k, m in models.items()}, tmp, batch=b, threads=1)
                ort = timed_many(runners, warmup=3)
                del runners
            for k in models:
                out[k][f"eager_b{b}"] = _ms(eager[k])
                out[k][f"ort_b{b}"] = _ms(ort[k])
    finally:
        torch.set_num_threads(old)
    return out


def _ms(t: dict) -> dict:
    return {"median": t["median_ms"], "p10": t["p10_ms"], "p90": t["p90_ms"], "stable": t["stable"]}


def arch_key(c: dict) -> str:
    """One uniform ratio gives every criterion the same architecture; another allocation its own per cell."""
    return "uniform" if c["allocation"] == "uniform" else cell_name(c["method"], c["allocation"], c["seed"])


def work_dir(net: str, a) -> Path:
    """The cells' run directories, one folder per protocol: runs of other options are never picked up."""
    return WORK / net / (f"t{a.target_macs:g}-l{a.ft_layer_epochs:g}-e{a.ft_epochs}-lr{a.ft_lr:g}"
                         + (f"-n{a.train_subset}" if a.train_subset else ""))


def cells_wanted(a) -> list[tuple[str, str, int]]:
    """Uniform cells first: the other allocations of a criterion meet its seed-0 uniform cell's MACs."""
    seeds = [int(s) for s in a.seeds.split(",")]
    out = [(m, "uniform", s) for m in a.methods.split(",") for s in seeds]
    others = [x for x in a.allocations.split(",") if x != "uniform"]
    if others:
        out += [(m, "uniform", 0) for m in a.alloc_methods.split(",") if (m, "uniform", 0) not in out]
        out += [(m, alloc, int(s)) for alloc in others for m in a.alloc_methods.split(",")
                for s in a.alloc_seeds.split(",")]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=sorted(NETS), default="resnet20")
    ap.add_argument("--methods", default="thinet,weight_sum,apoz,random")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--allocations", default="uniform", help="uniform,global,sensitivity")
    ap.add_argument("--alloc-methods", default="thinet", help="criteria the non-uniform allocations run with")
    ap.add_argument("--alloc-seeds", default="0")
    ap.add_argument("--target-macs", type=float, default=0.5)
    ap.add_argument("--ft-layer-epochs", type=float, default=0.2, help="fine-tuning after each pruned layer")
    ap.add_argument("--ft-epochs", type=int, default=8, help="final fine-tuning epochs")
    ap.add_argument("--ft-lr", type=float, default=0.01)
    ap.add_argument("--latency", action="store_true", help="time the finished models again")
    ap.add_argument("--train-subset", type=int, default=0, help="final fine-tuning on N images (a quick check only)")
    ap.add_argument("--results", default=str(RESULTS), help="where the table goes (a quick check: elsewhere)")
    a = ap.parse_args()
    path = Path(a.results) / f"prune_whole_{a.net}.json"
    protocol = {k: getattr(a, k) for k in ("target_macs", "ft_layer_epochs", "ft_epochs", "ft_lr", "train_subset")}
    read(path, protocol)  # another protocol's results stop it before any work
    elsewhere = run_cells(a, path, protocol)
    if elsewhere:  # the other process writes the latency and the last table once its cells are done
        print(f"left to the process running them: {', '.join(elsewhere)}", flush=True)
        return
    with locked(path):
        data = read(path, protocol)
        for name, cell in data["cells"].items():
            data["cells"][name] = bn_augmented(cell)
        archs = {"unpruned", *map(arch_key, data["cells"].values())}
        if a.latency or not archs <= set(data.get("latency", {})):
            # an architecture whose checkpoint is not here keeps the latency measured before
            data["latency"] = {**data.get("latency", {}), **latency(data["cells"], a.net)}
        save(path, data, a.net)


def read(path: Path, protocol: dict) -> dict:
    """The results file (cells finished so far, by any process), which must hold this protocol's cells only."""
    data = json.loads(path.read_text()) if path.is_file() else {"cells": {}}
    if data.get("protocol", protocol) != protocol:
        sys.exit(f"{path} holds cells of another protocol {data['protocol']}: move it away or use those options")
    return dict(data, protocol=protocol)


def run_cells(a, path: Path, protocol: dict) -> list[str]:
    """Every wanted cell not finished yet, each saved as it finishes; a second process running the same command
    (the other queue worker) takes the cells this one does not hold. Returns the cells left running elsewhere."""
    elsewhere = []
    for method, alloc, seed in cells_wanted(a):
        name = cell_name(method, alloc, seed)
        cells = read(path, protocol)["cells"]
        if name in cells:
            print(f"{name}: done ({100 * cells[name]['final_acc']:.2f}%)", flush=True)
            continue
        uniform = cell_name(method, "uniform", 0)
        if alloc != "uniform" and uniform not in cells:  # it meets that cell's MACs: wait for it
            elsewhere.append(name)
            continue
        with claimed(work_dir(a.net, a) / name) as mine:
            if not mine:
                print(f"{name}: running in another process", flush=True)
                elsewhere.append(name)
                continue
            cell = bn_augmented(run_cell(a.net, method, alloc, seed, a, cells))
        with locked(path):
            data = read(path, protocol)
            data["cells"][name] = cell
            save(path, data, a.net)
    return [n for n in elsewhere if n not in read(path, protocol)["cells"]]


def save(path: Path, data: dict, net: str) -> None:
    from slimlab.io import atomic_write_json, atomic_write_text

    data["machine"] = usual_machine([c.get("machine") for c in data["cells"].values()]) or machine()
    atomic_write_json(path, data)
    atomic_write_text(path.with_suffix(".md"), table(data, net))
    plot(data, net, path.with_suffix(".png"))


def rows_of(data: dict) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in data["cells"].values():
        groups.setdefault((c["method"], c["allocation"]), []).append(c)
    return groups


def _stat(vals: list[float]) -> str:
    v = [100 * x for x in vals if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.2f}"
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})"


def _macs(cs: list[dict]) -> str:
    lo, hi = min(c["macs"] for c in cs), max(c["macs"] for c in cs)
    span = f"{lo / 1e6:.1f}" if lo == hi else f"{lo / 1e6:.1f}-{hi / 1e6:.1f}"
    return f"{span} ({cs[0]['macs_base'] / hi:.2f}x)"


def _lat(data: dict, key: str) -> str:
    lat = data.get("latency", {}).get(key)
    if not lat:
        return "-"
    return " / ".join(f"{lat[k]['median']:.2f} [{lat[k]['p10']:.2f}-{lat[k]['p90']:.2f}]"
                      for k in ("eager_b1", "eager_b64", "ort_b1", "ort_b64"))


def table(data: dict, net: str) -> str:
    p, m = data["protocol"], data.get("machine", {})
    groups = rows_of(data)
    any_c = next(iter(data["cells"].values()), None)
    rows = []
    if any_c:
        rows.append(["unpruned", "-", "-", f"{any_c['params_base'] / 1e6:.3f}", f"{any_c['macs_base'] / 1e6:.1f}",
                     f"{100 * any_c['base_acc']:.2f}", "-", "-", "-", "-", _lat(data, "unpruned")])
    for (method, alloc), cs in groups.items():
        c0 = cs[0]
        rows.append([method, alloc, ",".join(str(c["seed"]) for c in cs), f"{c0['params'] / 1e6:.3f}",
                     _macs(cs), f"{100 * c0['base_acc']:.2f}",
                     _stat([c["pruned_acc_no_bn"] for c in cs]), _stat([c["pruned_acc"] for c in cs]),
                     _stat([c["final_acc"] for c in cs]),
                     f"{100 * (statistics.mean(c['final_acc'] for c in cs) - c0['base_acc']):+.2f}",
                     _lat(data, arch_key(c0))])
    head = (f"# Whole-network pruning: {TITLES[net]} (`{NETS[net]}`) on CIFAR-10 at <= {p['target_macs']} of its "
            "MACs\n\n"
            f"Every row: layer by layer, {p['ft_layer_epochs']:g} epoch of fine-tuning (lr 0.001) after each pruned "
            f"layer, BatchNorm re-estimated on 1,000 training images augmented as in training, then {p['ft_epochs']} "
            "epochs of fine-tuning "
            f"(cosine from lr {p['ft_lr']}): {_budget(data)}. Test set: all 10,000 images, last epoch (nothing "
            "chosen on it). "
            f"{machine_line(m)}{_threads_note(data)} Latency: ms, median [p10-p90], 1 thread, models interleaved."
            + (" The BatchNorm column of cells pruned before 2026-12-03 (re-estimated then on un-augmented images) "
               "was re-measured from their saved pruned models; the old figures stay in the JSON "
               "(pruned_acc_bn_unaugmented)." if any("pruned_acc_bn_unaugmented" in c for c in data["cells"].values())
               else "") + _profile_note(data) + "\n\n")
    t = md_table(["method", "allocation", "seeds", "params (M)", "MACs (M)", "before (%)",
                  "after pruning, no BN re-est. (%)", "after pruning (%)", "after fine-tuning (%)", "change",
                  "latency eager b1 / b64 / ORT b1 / b64"], rows)
    return head + t + "\n\n" + published(net) + "\n" + verdicts(groups, net) + "\n"


TITLES = {"resnet20": "ResNet-20", "resnet56": "ResNet-56"}


def _threads_note(data: dict) -> str:
    """Which cells trained on which CPU and how many threads, when they differ (speed and rounding differ; the
    protocol does not)."""
    return machines_note({name: c.get("machine") or {} for name, c in data["cells"].items()})


def _budget(data: dict) -> str:
    """The fine-tuning budget in epochs of images, checked equal for every row (a difference is named)."""
    budgets = sorted({c["ft_epochs_equiv"] for c in data["cells"].values()})
    if len(budgets) <= 1:
        return f"{budgets[0] if budgets else '-'} epochs of images per row, equal for every row"
    return f"NOT EQUAL between rows: {', '.join(f'{b:g}' for b in budgets)} epochs of images"


def _profile_note(data: dict) -> str:
    splits = {c.get("sensitivity_split") for c in data["cells"].values() if c["allocation"] == "sensitivity"}
    if not splits - {None}:
        return ""
    where = "/".join(sorted(splits - {None}))
    return (f" The sensitivity allocation's profile (each layer pruned alone to 75/50/25%) was measured on 1,000 "
            f"{where} images" + (": the zoo model trained on all 50,000 and has no validation split, so its drops "
                                "there are smaller than on unseen images; only their order between layers is used"
                                if where == "training" else "") + ".")


def published(net: str) -> str:
    if net != "resnet56":
        return ("Published figures: none placed beside this table. The anchors issue 20 names are for ResNet-56 "
                "(`prune_whole_resnet56.md`); no ResNet-20 whole-network figure was checked against its source, "
                "so none is quoted. The claim tested here is the paper's own: ThiNet against the other criteria "
                "at equal MACs and equal fine-tuning.\n")
    rows = [[name, "-" if b is None else f"{b:.2f}", "-" if b is None else f"{q:.2f}",
             f"{q:+.2f}" if b is None else f"{q - b:+.2f}", red, src] for name, b, q, red, src in PUBLISHED]
    return ("Published, ResNet-56 on CIFAR-10 at about 2x fewer FLOPs (their baselines train 160-300 epochs; "
            "ours is the zoo's 60-epoch model):\n\n"
            + md_table(["method (source)", "before (%)", "after (%)", "change", "reduction", "checked against"], rows)
            + "\n")


def _vals(groups, method, alloc="uniform") -> list[float]:
    return [100 * c["final_acc"] for c in groups.get((method, alloc), [])]


def _beats(t: list[float], w: list[float], label: str) -> str:
    """holds / does not hold / not shown, by the seeds' ranges (two seeds a side at least), with the numbers."""
    if min(len(t), len(w)) < 2:
        v = "not shown yet: fewer than two seeds on a side"
    elif min(t) > max(w):
        v = f"holds: every ThiNet seed is above every {label} seed"
    elif max(t) < min(w):
        v = f"does not hold: {label} is above ThiNet on every seed"
    else:
        side = "above" if statistics.mean(t) > statistics.mean(w) else "below"
        v = (f"does not hold as claimed: the seeds' ranges overlap, so neither is shown better (ThiNet's mean is "
             f"{side} {label}'s)")
    return (f"{v} (mean gap {statistics.mean(t) - statistics.mean(w):+.2f} points, ThiNet "
            f"{', '.join(f'{x:.2f}' for x in t)}; {label} {', '.join(f'{x:.2f}' for x in w)})")


def verdicts(groups: dict, net: str) -> str:
    out = ["## Verdicts", ""]
    t = _vals(groups, "thinet")
    for other, label in (("weight_sum", "weight sum"), ("apoz", "APoZ"), ("random", "random")):
        w = _vals(groups, other)
        if t and w:
            out.append(f"- ThiNet beats {label} at equal MACs and equal fine-tuning: {_beats(t, w, label)}.")
        elif t and other == "weight_sum":  # the comparison every network's table makes
            out.append("- ThiNet beats weight sum at equal MACs and equal fine-tuning: not shown yet (no weight-sum "
                       "cell finished).")
    if net == "resnet56" and t:
        out.append(_goal(groups[("thinet", "uniform")]))
    for alloc in ("global", "sensitivity"):
        v = _vals(groups, "thinet", alloc)
        if v and t:
            c = groups[("thinet", alloc)][0]
            gap = statistics.mean(v) - statistics.mean(t)
            u = groups[("thinet", "uniform")][0]
            out.append(f"- ThiNet with --allocation {alloc}: {statistics.mean(v):.2f}% against uniform's "
                       f"{statistics.mean(t):.2f}% ({gap:+.2f}; uniform's seeds span "
                       f"{max(t) - min(t):.2f}) at {c['macs_base'] / c['macs']:.2f}x fewer MACs "
                       f"({100 * (c['macs'] / u['macs'] - 1):+.1f}% MACs against uniform's)"
                       + (f"; predicted drop before fine-tuning {c['predicted_drop']:.2f}" if c.get("predicted_drop")
                          is not None else "") + ".")
        elif t and net == "resnet56":  # the allocations are compared on ResNet-56
            out.append(f"- ThiNet with --allocation {alloc} against uniform at the same MACs: not shown yet (its cell "
                       "has not finished).")
    return "\n".join(out)


def _goal(cs: list[dict], limit: float = 0.8) -> str:
    """Issue 20's goal on ResNet-56, per seed and on the mean, at the measured MACs ratio."""
    base = 100 * cs[0]["base_acc"]
    finals = [c["final_acc"] for c in cs]
    drops = [base - 100 * a for a in finals]
    mean = statistics.mean(drops)
    ok = sum(d <= limit for d in drops)
    verdict = ("holds on every seed" if ok == len(drops) else "does not hold on any seed" if ok == 0
               else f"holds on {ok} of {len(drops)} seeds") + ("" if len(drops) > 1 else " (one seed so far)")
    return (f"- Goal, ThiNet loses at most {limit} points at 2x fewer MACs (here "
            f"{cs[0]['macs_base'] / max(c['macs'] for c in cs):.2f}x): {verdict}; {base:.2f} -> "
            f"{', '.join(f'{100 * a:.2f}' for a in finals)}, lost {', '.join(f'{d:.2f}' for d in drops)} "
            f"(mean {mean:.2f}" + (f", {mean - limit:.2f} over the goal" if mean > limit else "") + ").")


def plot(data: dict, net: str, path: Path) -> None:
    from slimlab.io import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (method, alloc), cs in rows_of(data).items():
        xs = [c["macs"] / 1e6 for c in cs]
        ax.scatter(xs, [100 * c["final_acc"] for c in cs], label=f"{method} ({alloc})", s=24)
    c0 = next(iter(data["cells"].values()), None)
    if c0:
        ax.axhline(100 * c0["base_acc"], color="grey", ls="--", lw=1, label="unpruned")
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel("test accuracy after fine-tuning (%)")
    ax.set_title(f"{net}: whole network at <= {data['protocol']['target_macs']} of its MACs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


if __name__ == "__main__":
    main()
