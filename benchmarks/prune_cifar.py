"""ThiNet against APoZ, weight sum and random at equal MACs and equal fine-tuning, on the CIFAR-10 copy.

Protocol (CPU budget, say so when reporting): train a CIFAR ResNet on a stratified subset, prune it
to about half its MACs with each method (layer by layer, one uniform keep ratio found by bisection),
fine-tune each pruned model with the same budget, and record params, MACs, accuracy before and
after fine-tuning, measured CPU latency speed-up and pruning time. Separately, time ThiNet's sample
collection and selection for every prunable layer of ResNet-56 (the performance bar: under 60 s).

With ``--checkpoint zoo:resnet56-cifar10`` the trained model comes from the zoo instead (issue 12's
protocol: every criterion gets the same fine-tuning budget, ``--ft-layer-epochs`` after each layer
plus ``--ft-epochs`` at the end, over ``--seeds`` seeds).

Usage: python benchmarks/prune_cifar.py [--model resnet20] [--train-subset 10000] [--epochs 15] [--ft-epochs 3]
       python benchmarks/prune_cifar.py --checkpoint zoo:resnet56-cifar10 --ft-layer-epochs 1 --ft-epochs 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import ROOT, cifar_spec, md_table, write  # noqa: E402
from slimlab import api  # noqa: E402
from slimlab import data as D  # noqa: E402
from slimlab.config import TrainConfig  # noqa: E402
from slimlab.models import create_model  # noqa: E402
from slimlab.prune import Calibration, PruneConfig, prune_model  # noqa: E402


def thinet_speed(spec: str) -> dict:
    ds = D.build(spec)
    idx = D.stratified_subset(ds.train.targets, per_class=10, seed=0)
    calib = Calibration(next(iter(D.BatchLoader(ds.train, idx, 10**9, mean=ds.mean, std=ds.std)))["image"])
    out = {}
    for mode in ("layerwise", "oneshot"):
        m = create_model("resnet56", 10).eval()
        t = time.perf_counter()
        info = prune_model(m, "thinet", 0.5, calib, mode=mode)
        out[mode] = {"seconds": time.perf_counter() - t, "layers": len(info["channels"])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--train-subset", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--ft-epochs", type=int, default=3)
    ap.add_argument("--ft-lr", type=float, default=0.01)
    ap.add_argument("--target-macs", type=float, default=0.5)
    ap.add_argument("--methods", default="thinet,thinet_orig,apoz,l1,random",
                    help="thinet_orig: ThiNet with --thinet-target original; thinet_refine: with --thinet-refine")
    ap.add_argument("--checkpoint", default="", help="a trained model (zoo:NAME) instead of training one")
    ap.add_argument("--ft-layer-epochs", type=float, default=0.0, help="fine-tuning after each pruned layer")
    ap.add_argument("--seeds", type=int, default=3, help="prune + fine-tune repeats (calibration set, sampling, order)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-prune"))
    ap.add_argument("--name", default="prune_cifar", help="results file name under benchmarks/results/")
    ap.add_argument("--latency-only", action="store_true",
                    help="re-measure CPU latency of the saved models (on a quiet machine) and rewrite the table")
    a = ap.parse_args()
    spec = cifar_spec()
    out = Path(a.out)
    if a.latency_only:
        return remeasure(out, a)
    base = out / f"{a.model}-base"
    if a.checkpoint:
        from slimlab import zoo

        base = Path(zoo.resolve(a.checkpoint)).parent
        a.model = json.loads((base / "summary.json").read_text()).get("model", a.model)
    elif not (base / "summary.json").is_file():
        api.train(TrainConfig(data=spec, model=a.model, epochs=a.epochs, train_subset=a.train_subset, lr=0.1,
                              batch_size=128, schedule="cosine", out=str(base), progress="log"))
    base_summary = json.loads((base / "summary.json").read_text())
    ckpt = a.checkpoint or str(base / "best.pt")
    results = {}
    for method in a.methods.split(","):
        runs = []
        for seed in range(a.seeds):
            protocol = (f"-{Path(str(a.checkpoint)).name.replace(':', '_')}-ftl{a.ft_layer_epochs:g}"
                        if a.checkpoint else "")  # a zoo model and per-layer budget get their own runs
            name = f"{a.model}{protocol}-{method}" + (f"-s{seed}" if seed else "")
            done = out / name / "summary.json"
            if done.is_file():
                runs.append(json.loads(done.read_text()))
                continue
            runs.append(api.prune(PruneConfig(
                checkpoint=ckpt, method="thinet" if method.startswith("thinet") else method,
                thinet_target="original" if method == "thinet_orig" else "current",
                thinet_refine=method == "thinet_refine", target_macs=a.target_macs, data=spec,
                finetune_epochs=a.ft_epochs, ft_lr=a.ft_lr, ft_layer_epochs=a.ft_layer_epochs, seed=seed,
                out=str(out / name), progress="log", overwrite=True)))
            print(method, seed, runs[-1]["pruned"]["test_acc"], runs[-1]["finetuned"], flush=True)
        results[method] = dict(runs[0], seeds=[{"pruned_acc": r["pruned"]["test_acc"],
                                                "finetuned_acc": r["finetuned"]["test_acc"]} for r in runs])
    speed = thinet_speed(spec)
    write(a.name, {"args": vars(a), "base": base_summary, "methods": results, "thinet_resnet56_speed": speed},
          make_table(a, results, speed))


def _mean_std(s: dict, key: str, single: float) -> str:
    vals = [100 * r[key] for r in s.get("seeds", [])] or [100 * single]
    return f"{vals[0]:.2f}" if len(vals) == 1 else f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}"


def make_table(a, results: dict, speed: dict) -> str:
    rows = []
    for method, s in results.items():
        o, p, f = s["original"], s["pruned"], s["finetuned"]
        rows.append([method, f"{o['params'] / 1e6:.3f} -> {p['params'] / 1e6:.3f}",
                     f"{o['macs'] / 1e6:.1f} -> {p['macs'] / 1e6:.1f} ({s['macs_reduction']:.2f}x)",
                     f"{100 * o['test_acc']:.2f}", _mean_std(s, "pruned_acc", p["test_acc"]),
                     _mean_std(s, "finetuned_acc", f["test_acc"]),
                     f"{s['latency_speedup']['batch1']:.2f}x / {s['latency_speedup']['batch64']:.2f}x",
                     f"{s['prune_s']:.1f}"])
    origin = (f"{a.model} from {a.checkpoint}" if getattr(a, "checkpoint", "") else
              f"{a.model} trained {a.epochs} epochs on a {a.train_subset}-image stratified subset of the CIFAR-10 copy")
    per_layer = getattr(a, "ft_layer_epochs", 0.0)
    return (f"{origin} (CPU budget), pruned to <= {a.target_macs} of its MACs"
            + (f", {per_layer:g} epoch(s) of fine-tuning after each pruned layer" if per_layer else "")
            + f", fine-tuned {a.ft_epochs} epochs at "
            f"lr {a.ft_lr}; test set: all 10,000 images. Accuracies: mean ± std over {getattr(a, 'seeds', 1)} "
            "prune + fine-tune seed(s) of the same trained model. thinet_orig: ThiNet with --thinet-target original "
            "(re-weighting reproduces the unpruned model's responses).\n\n"
            + md_table(["method", "params (M)", "MACs (M)", "acc before (%)", "after pruning (%)",
                        "after fine-tune (%)", "CPU latency speed-up (batch 1 / 64)", "pruning time (s)"], rows)
            + f"\n\nThiNet collection + selection, all {speed['layerwise']['layers']} prunable layers of ResNet-56, "
            f"CPU: {speed['layerwise']['seconds']:.1f} s layer by layer, {speed['oneshot']['seconds']:.1f} s one-shot "
            "(bar: under 60 s).\n\nLatency: CPU median (batch 1: 100 runs, batch 64: 10), measured on a quiet machine. "
            "With one uniform ratio every method keeps the same number of channels per layer, so the pruned "
            "models of every method share one architecture: their speed-ups differ by measurement noise only.\n")


def remeasure(out: Path, a) -> None:
    """Median CPU latency (batch 1: 100 runs, batch 64: 10) of the original and every pruned model."""
    from _util import RESULTS
    from slimlab.engine import load_checkpoint
    from slimlab.models.io import model_from_checkpoint
    from slimlab.profile import measure_latency

    data = json.loads((RESULTS / "prune_cifar.json").read_text())

    def lat(m):
        m = m.eval()
        return {"batch1": measure_latency(m, 32, 1, warmup=10, iters=100)["median_ms"],
                "batch64": measure_latency(m, 32, 64, warmup=3, iters=10)["median_ms"]}

    def model_of(name: str, s: dict | None = None):
        path = out / f"{data['args']['model']}-{name}" / "best.pt"
        if path.is_file():
            return model_from_checkpoint(load_checkpoint(path))
        # latency depends on the architecture only: rebuild it from the recorded channel counts
        from slimlab.models import create_model
        from slimlab.prune import prune_model

        m = create_model(data["args"]["model"], 10)
        if s is not None:
            info = prune_model(m, "l1", s["ratio"], None)
            assert info["channels"] == s["channels"], (name, info["channels"], s["channels"])
        return m

    rebuilt = not (out / f"{data['args']['model']}-base" / "best.pt").is_file()
    base = lat(model_of("base"))
    for method, s in data["methods"].items():
        after = lat(model_of(method, s))
        s["original"]["latency_ms"], s["pruned"]["latency_ms"] = base, after
        s["latency_speedup"] = {k: base[k] / after[k] for k in base}
    data["latency_remeasured"] = "architectures rebuilt from the recorded channels" if rebuilt else True
    data.pop("machine", None)
    args = argparse.Namespace(**data["args"])
    write("prune_cifar", data, make_table(args, data["methods"], data["thinet_resnet56_speed"]))


if __name__ == "__main__":
    main()
