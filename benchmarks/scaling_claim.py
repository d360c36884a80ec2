"""EfficientNet's central claim on CIFAR-10: at equal MACs, scaling depth, width and resolution together
beats scaling any one of them (Tan & Le 2019, Fig. 3 and Fig. 8).

From a small base (EfficientNet-B0 at ``--base-width`` with the CIFAR stem, 32x32), four ways to about
2x and 4x the base's *measured* MACs:
- depth only: ``depth_mult`` found by bisection on the measured MACs;
- width only: ``width_mult``, likewise;
- resolution only: the input size (the images are resized);
- compound: the paper's (alpha, beta, gamma) = (1.2, 1.1, 1.15) at the phi that reaches the target.
Each is trained with the same fast schedule (SGD, Nesterov, cosine, warm-up) on the CIFAR-10 copy, and
plotted against MACs and against measured CPU latency (batch 1). The search for (alpha, beta, gamma) at
this scale is ``slimlab scale search --base efficientnet_b0 --data cifar10 ...`` (see recipes/
efficientnet_scaling.yaml), reported beside the paper's (1.2, 1.1, 1.15).

Usage: python benchmarks/scaling_claim.py [--base-width 0.5] [--epochs 15] [--train-subset 0] [--targets 2,4]
Writes benchmarks/results/scaling_claim.{json,md,png}.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _util import RESULTS, ROOT, cached_train, cifar_spec, md_table, write  # noqa: E402
from slimlab.models import create_model  # noqa: E402
from slimlab.profile import count_macs, measure_latency  # noqa: E402
from slimlab.scaling.search import PAPER_POINT, scale  # noqa: E402

BASE = "efficientnet_b0"


def macs_of(kwargs: dict, res: int) -> int:
    return count_macs(create_model(BASE, 10, **kwargs), res)


def bisect(f, lo: float, hi: float, target: float, steps: int = 30) -> float:
    """x in [lo, hi] whose f(x) is closest to ``target`` (f increasing, possibly in steps: the depth's repeats
    are whole blocks), on a log scale, from either side of the step that crosses it."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        if f(mid) <= target:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda x: abs(math.log(f(x) / target)))


def variants(base_kw: dict, target: float) -> dict[str, tuple[dict, int]]:
    """(model arguments, resolution) of each way of scaling the base to ``target`` x its MACs."""
    m0 = macs_of(base_kw, 32)
    w0, d0 = base_kw["width_mult"], base_kw.get("depth_mult", 1.0)
    d = bisect(lambda x: macs_of({**base_kw, "depth_mult": d0 * x}, 32) / m0, 1.0, 8.0, target)
    w = bisect(lambda x: macs_of({**base_kw, "width_mult": w0 * x}, 32) / m0, 1.0, 4.0, target)
    r = bisect(lambda x: macs_of(base_kw, round(32 * x)) / m0, 1.0, 4.0, target)

    def compound_at(phi: float) -> tuple[dict, int]:
        s = scale(BASE, phi, *PAPER_POINT, base_resolution=32, base_kwargs=base_kw)
        return {**base_kw, **s.model_kwargs}, s.resolution

    phi = bisect(lambda p: macs_of(*compound_at(p)) / m0, 0.0, 4.0, target)
    return {"depth": ({**base_kw, "depth_mult": d0 * d}, 32), "width": ({**base_kw, "width_mult": w0 * w}, 32),
            "resolution": (base_kw, round(32 * r)), "compound": compound_at(phi)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-width", type=float, default=0.5)
    ap.add_argument("--base-depth", type=float, default=0.5)
    ap.add_argument("--targets", default="2,4", help="MACs multiples of the base")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--train-subset", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-scaling"))
    ap.add_argument("--name", default="scaling_claim")
    ap.add_argument("--dry", action="store_true", help="only list the variants and their MACs")
    a = ap.parse_args()
    base_kw = {"width_mult": a.base_width, "depth_mult": a.base_depth, "cifar_stem": True, "dropout": 0.0,
               "bn_momentum": 0.1}  # short runs: PyTorch's BN momentum (see efficientnet.py)
    m0 = macs_of(base_kw, 32)
    plan = {"base": {"x1": (base_kw, 32)}}
    for t in [float(x) for x in a.targets.split(",")]:
        for way, v in variants(base_kw, t).items():
            plan.setdefault(way, {})[f"x{t:g}"] = v
    rows, data = [], {}
    spec = None if a.dry else cifar_spec()
    for way, points in plan.items():
        for tag, (kw, res) in points.items():
            macs = macs_of(kw, res)
            entry = {"model_kwargs": kw, "resolution": res, "macs": macs, "macs_ratio": macs / m0}
            if not a.dry:
                model = create_model(BASE, 10, **kw).eval()
                entry["latency_ms"] = measure_latency(model, res, 1, warmup=5, iters=30)["median_ms"]
                s = cached_train(Path(a.out) / f"{way}-{tag}", data=spec, model=BASE, model_kwargs=kw, image_size=res,
                                 epochs=a.epochs, train_subset=a.train_subset, lr=a.lr, batch_size=128,
                                 warmup_epochs=1.0, val_fraction=0.0, track_test=True)
                entry["test_acc"] = s["test_acc"]
            data.setdefault(way, {})[tag] = entry
            rows.append([way, tag, f"{macs / 1e6:.1f}", f"{entry['macs_ratio']:.2f}", res,
                         f"{kw.get('depth_mult', 1):.2f}", f"{kw['width_mult']:.2f}",
                         f"{entry.get('latency_ms', float('nan')):.2f}",
                         f"{100 * entry['test_acc']:.2f}" if "test_acc" in entry else ""])
            print(rows[-1], flush=True)
    verdicts = []
    for t in [f"x{float(x):g}" for x in a.targets.split(",")]:
        accs = {w: data[w][t].get("test_acc") for w in ("depth", "width", "resolution", "compound")}
        if all(v is not None for v in accs.values()):
            best = max(accs, key=accs.get)
            verdict = "holds" if best == "compound" else "does not hold"
            verdicts.append(f"- {t} MACs: best {best} ({100 * accs[best]:.2f}%); compound "
                            f"{100 * accs['compound']:.2f}%: the claim **{verdict}**.")
    table = (f"EfficientNet-B0 base (width {a.base_width}, depth {a.base_depth}, CIFAR stem, 32x32, "
             f"{m0 / 1e6:.1f}M MACs) scaled four ways; each trained {a.epochs} epochs on "
             f"{a.train_subset or 50000} CIFAR-10 images, SGD lr {a.lr} cosine; latency: CPU, batch 1, median.\n\n"
             + md_table(["scaling", "target", "MACs (M)", "x base", "resolution", "depth mult", "width mult",
                         "latency (ms)", "test acc (%)"], rows)
             + "\n\nClaim: at equal MACs, compound scaling beats depth, width or resolution alone.\n"
             + ("\n".join(verdicts) or "(not trained: --dry)") + "\n")
    if a.dry:
        print(table)
        return
    write(a.name, {"args": vars(a), "base_macs": m0, "results": data}, table)
    plot(data, RESULTS / f"{a.name}.png")


def plot(data: dict, path: Path) -> None:
    from slimlab.io import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    base = data["base"]["x1"]
    for way in ("depth", "width", "resolution", "compound"):
        pts = [base] + [data[way][t] for t in sorted(data[way], key=lambda t: float(t[1:]))]
        ax[0].plot([p["macs"] / 1e6 for p in pts], [100 * p["test_acc"] for p in pts], marker="o", label=way)
        ax[1].plot([p["latency_ms"] for p in pts], [100 * p["test_acc"] for p in pts], marker="o", label=way)
    ax[0].set(xlabel="MACs (M)", ylabel="test accuracy (%)", title="accuracy against MACs")
    ax[1].set(xlabel="CPU latency, batch 1 (ms)", ylabel="test accuracy (%)", title="accuracy against latency")
    ax[0].legend()
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
