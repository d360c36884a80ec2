"""EfficientNet's central claim on CIFAR-10: at equal MACs, scaling depth, width and resolution together
beats scaling any one of them (Tan & Le 2019, Fig. 3 and Fig. 8).

From a small base (EfficientNet-B0 at ``--base-width`` with the CIFAR stem, 32x32), four ways to about
2x and 4x the base's *measured* MACs. Depth comes in whole blocks, so the depth arm is fixed first and
the others are matched to *its* measured MACs (within MATCH = 3%):
- depth only: ``depth_mult`` found by bisection on the measured MACs (the closest whole-block point);
- width only: ``width_mult`` matched to the depth arm's MACs;
- resolution only: the input size (the images are resized), likewise;
- compound: the paper's (alpha, beta, gamma) = (1.2, 1.1, 1.15) at the phi that reaches the depth arm's
  MACs; its depth also comes in whole blocks, so its width is then moved (within +-30% of beta^phi) and its
  resolution pixel by pixel to the closest match (the table shows how far the width moved from beta^phi).
The resolution arms see CIFAR's 32x32 images upsampled (bilinear, at decode): more pixels, no new detail.
Depth and resolution both move in steps (whole blocks; feature maps of ceil(res / stride)), so the
point actually compared is the depth point nearest the target that some resolution matches within 3%:
at the default base (width 0.5, depth 0.75), 2.18x for the nominal 2x and 4.02x for the nominal 4x (at depth
0.5 they were 2.62x and 3.66x: too far from the targets and from each other). Every arm trains with ``--seeds``
(default 2); the verdict states each arm's MACs mismatch and the spread over seeds, and "holds" only where
compound beats every other arm by more than that spread.
Each is trained with the same fast schedule (SGD, Nesterov, cosine, warm-up) on the CIFAR-10 copy, and
plotted against MACs and against measured CPU latency (batch 1, every arm interleaved). The search for (alpha,
beta, gamma) itself is ``slimlab scale search`` (the efficientnet_scaling recipe); this benchmark uses the
paper's point.

Resumable and shareable: each (arm, seed) is a run directory; a finished one is read back, one cut short
resumes from its ``last.pt``, one that diverged is recorded (``NAME.diverged.json``) and not trained again; two
processes of this command (the two queue workers) share the runs (``_util.claimed``), and the one that finds
every run finished times the latency and writes the table.

The CPU budget (issue 23: about 3 hours on 2 cores) sets the default scale: 5,000 training images, 15 epochs,
18 runs (``--dry`` prints the plan and its training cost in image-epochs and MAC-epochs).

Usage: python benchmarks/scaling_claim.py [--base-width 0.5] [--epochs 15] [--train-subset 5000] [--targets 2,4]
Writes benchmarks/results/scaling_claim.{json,md,png}.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _util  # noqa: E402
from _util import RESULTS, bench_dir, cached_train, cifar_spec, claimed, locked  # noqa: E402
from slimlab.models import create_model  # noqa: E402
from slimlab.profile import count_macs  # noqa: E402
from slimlab.scaling.search import PAPER_POINT, scale  # noqa: E402

BASE = "efficientnet_b0"


def macs_of(kwargs: dict, res: int) -> int:
    return _macs(json.dumps(kwargs, sort_keys=True), res)


@functools.cache
def _macs(kwargs: str, res: int) -> int:
    return count_macs(create_model(BASE, 10, **json.loads(kwargs)), res)


def bisect(f, lo: float, hi: float, target: float, steps: int = 16) -> float:
    """x in [lo, hi] whose f(x) is closest to ``target`` (f increasing, possibly in steps: the depth's repeats
    are whole blocks), on a log scale, from either side of the step that crosses it."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        if f(mid) <= target:
            lo = mid
        else:
            hi = mid
    return min((lo, hi), key=lambda x: abs(math.log(f(x) / target)))


MATCH = 0.03  # the arms' MACs agree with the depth arm's within 3%


def variants(base_kw: dict, target: float) -> dict[str, tuple[dict, int]]:
    """(model arguments, resolution) of each way of scaling the base to about ``target`` x its MACs: the depth
    arm first (whole blocks), the others matched to its measured MACs."""
    m0 = macs_of(base_kw, 32)
    w0, d0 = base_kw["width_mult"], base_kw.get("depth_mult", 1.0)
    # depth (whole blocks) and resolution (whole pixels, feature maps of ceil(res / stride)) both move the MACs in
    # steps: take the depth point nearest the target that some resolution matches within MATCH
    depths: dict[float, float] = {}
    for x in range(10, 100):  # depth_mult d0 * x / 10 up to twice the target's MACs; the fewest blocks kept per ratio
        ratio = round(macs_of({**base_kw, "depth_mult": d0 * x / 10}, 32) / m0, 4)
        depths.setdefault(ratio, d0 * x / 10)
        if ratio > 2 * target:
            break
    sizes = {r: macs_of(base_kw, r) / m0 for r in range(32, min(161, round(32 * math.sqrt(2 * target)) + 1))}
    pairs = [(abs(math.log(ratio / target)), ratio, d, min(sizes, key=lambda r: abs(math.log(sizes[r] / ratio))))
             for ratio, d in depths.items()]
    pairs = [p for p in pairs if abs(sizes[p[3]] / p[1] - 1) <= MATCH] or pairs
    _, goal, d, res_only = min(pairs)
    depth = ({**base_kw, "depth_mult": d}, 32)
    off = lambda kw, res: abs(math.log(macs_of(kw, res) / m0 / goal))  # noqa: E731
    w = bisect(lambda x: macs_of({**base_kw, "width_mult": w0 * x}, 32) / m0, 1.0, 4.0, goal)

    def compound_at(phi: float) -> tuple[dict, int]:
        s = scale(BASE, phi, *PAPER_POINT, base_resolution=32, base_kwargs=base_kw)
        return {**base_kw, **s.model_kwargs}, s.resolution

    kw, res = compound_at(bisect(lambda p: macs_of(*compound_at(p)) / m0, 0.0, 4.0, goal))
    # the compound point's depth comes in whole blocks too: close the gap with its continuous width (within
    # +-30% of the paper's beta^phi) at the nearest resolutions, keeping the closest match
    options = []
    for r in range(max(8, res - 2), res + 3):
        f = bisect(lambda x, r=r: macs_of({**kw, "width_mult": kw["width_mult"] * x}, r) / m0, 0.7, 1.3, goal)
        options.append((off({**kw, "width_mult": kw["width_mult"] * f}, r), abs(r - res), r, f))
    _, _, r, f = min(options)
    return {"depth": depth, "width": ({**base_kw, "width_mult": w0 * w}, 32),
            "resolution": (base_kw, res_only), "compound": ({**kw, "width_mult": kw["width_mult"] * f}, r)}


def mismatch(plan: dict, way: str, tag: str) -> float:
    """How far an arm's measured MACs are from its depth arm's (relative)."""
    return macs_of(*plan[way][tag]) / macs_of(*plan["depth"][tag]) - 1


def unmatched(plan: dict) -> list[str]:
    """The arms whose measured MACs are more than MATCH off their depth arm's, as "way tag: +x.x%", and compound
    arms that shrink a dimension of the base (then they are no longer scaled up in all three)."""
    off = [f"{way} {tag}: {100 * mismatch(plan, way, tag):+.1f}%" for way, points in plan.items()
           if way not in ("base", "depth") for tag in points if abs(mismatch(plan, way, tag)) > MATCH]
    base = plan.get("base", {}).get("x1")
    for tag, (kw, res) in plan.get("compound", {}).items() if base else ():
        if kw["width_mult"] < base[0]["width_mult"] or kw["depth_mult"] < base[0]["depth_mult"] or res < base[1]:
            off.append(f"compound {tag}: width {kw['width_mult']:.2f}, depth {kw['depth_mult']:.2f}, resolution {res}"
                       " shrinks a dimension of the base")
    return off


def _phi(kw: dict, base_kw: dict) -> float:
    """The compound arm's phi, from its depth (alpha^phi = depth_mult / base depth_mult)."""
    return math.log(kw["depth_mult"] / base_kw["depth_mult"]) / math.log(PAPER_POINT[0])


def arms_latency(path: Path, arms: dict[str, tuple[dict, int]], again: bool, time_now: bool) -> dict[str, dict]:
    """Batch-1 eager CPU latency of every arm (ms: median, p10, p90; 1 thread), all timed in one interleaved pass
    (``timed_many``: arms timed one after another on 2 cores differ by more than the arms do) and kept in ``path``.
    A later start reuses them unless asked (``--latency``, which the queue runs with the other worker stopped) or
    unless the file timed other arms; ``time_now`` False (arms still training, or ``--partial``) times nothing."""
    import torch

    from slimlab.io import atomic_write_json
    from slimlab.profile.latency import timed_many

    keep = {k: {"model_kwargs": kw, "resolution": res} for k, (kw, res) in arms.items()}
    if path.is_file() and not (again and time_now):
        stored = json.loads(path.read_text())
        if all({f: stored["arms"].get(k, {}).get(f) for f in ("model_kwargs", "resolution")} == v
               for k, v in keep.items()):
            return stored["arms"]
    if not time_now:  # not every arm has trained (or --partial): nothing is timed beside the training
        return {}
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            fns = {k: functools.partial(create_model(BASE, 10, **kw).eval(), torch.randn(1, 3, res, res))
                   for k, (kw, res) in arms.items()}
            t = timed_many(fns, warmup=5)
    finally:
        torch.set_num_threads(old)
    out = {k: {**keep[k], **{f: t[k][f] for f in ("median_ms", "p10_ms", "p90_ms", "stable")}} for k in arms}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"arms": out, "threads": 1, "quiet": again, "machine": _util.machine()})
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-width", type=float, default=0.5)
    ap.add_argument("--base-depth", type=float, default=0.75)
    ap.add_argument("--targets", default="2,4", help="MACs multiples of the base")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--train-subset", type=int, default=5000, help="stratified training images (0: all 50,000)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--out", default=str(bench_dir("bench-scaling")))
    ap.add_argument("--name", default="scaling_claim")
    ap.add_argument("--dry", action="store_true", help="only list the variants and their MACs")
    ap.add_argument("--latency", action="store_true", help="time the arms again (else each arm's is kept)")
    ap.add_argument("--partial", action="store_true", help="train and time nothing: the table of the runs finished "
                    "so far, as NAME_partial (a campaign that spans sessions shows where it stands)")
    return ap.parse_args(argv)


def build_plan(a: argparse.Namespace) -> tuple[dict, dict]:
    """(the base's model kwargs, {way: {"x2": (kwargs, resolution), ...}}), every arm matched to the depth arm."""
    # short runs: no stochastic regularisers (dropout, stochastic depth) and PyTorch's BN momentum (efficientnet.py)
    base_kw = {"width_mult": a.base_width, "depth_mult": a.base_depth, "cifar_stem": True, "dropout": 0.0,
               "drop_path": 0.0, "bn_momentum": 0.1}
    plan = {"base": {"x1": (base_kw, 32)}}
    for t in [float(x) for x in a.targets.split(",")]:
        for way, v in variants(base_kw, t).items():
            plan.setdefault(way, {})[f"x{t:g}"] = v
    off = unmatched(plan)
    if off and a.dry:
        print("not matched within 3%, or not scaled up:", "; ".join(off))
    elif off:
        sys.exit("scaling_claim: arms not matched to the depth arm's MACs within 3%, or not scaled up: "
                 + "; ".join(off) + " (see --dry; change --base-width/--base-depth or --targets)")
    return base_kw, plan


def run_point(a: argparse.Namespace, plan: dict, base_kw: dict, way: str, tag: str, spec) -> dict:
    """One arm at one target: its MACs and mismatch, and unless --dry its accuracy over the seeds (``test_accs``
    once every seed has finished, ``left``: the seeds not finished, ``diverged``: seed -> why)."""
    kw, res = plan[way][tag]
    macs = macs_of(kw, res)
    entry = {"model_kwargs": kw, "resolution": res, "macs": macs, "macs_ratio": macs / macs_of(base_kw, 32)}
    if way != "base":
        entry["mismatch"] = mismatch(plan, way, tag)  # against the depth arm
    if way == "compound":
        paper_width = base_kw["width_mult"] * PAPER_POINT[1] ** _phi(kw, base_kw)
        entry["width_vs_paper"] = kw["width_mult"] / paper_width
    if a.dry:
        return entry
    accs, left, diverged = [], [], {}
    for seed in [int(x) for x in a.seeds.split(",")]:
        d = Path(a.out) / f"{way}-{tag}-s{seed}"
        got = seed_result(a, d, kw, res, seed, spec)
        if isinstance(got, float):
            accs.append(got)
        elif got is None:
            left.append(seed)
        else:
            diverged[seed] = got
    entry.update(left=left, diverged=diverged)
    if not left and not diverged:
        entry.update(test_acc=sum(accs) / len(accs), test_accs=accs)
    return entry


def seed_result(a: argparse.Namespace, d: Path, kw: dict, res: int, seed: int, spec) -> float | str | None:
    """A seed's test accuracy (last epoch), why it diverged (str), or None: not finished (``--partial`` or
    ``--latency`` train nothing; another process holds it). Two processes of this command share the seeds
    (``_util.claimed``); a run that diverged is recorded beside it and not trained again (it would resume into
    the same divergence)."""
    from slimlab.errors import SlimlabError
    from slimlab.io import atomic_write_json

    failed = d.parent / f"{d.name}.diverged.json"
    if (d / "summary.json").is_file():
        return json.loads((d / "summary.json").read_text())["test_acc"]
    if failed.is_file():
        return json.loads(failed.read_text())["error"]
    if a.partial or a.latency:
        return None
    with claimed(d) as mine:
        if not mine:
            return None
        try:
            return cached_train(d, data=spec, model=BASE, model_kwargs=kw, image_size=res, epochs=a.epochs,
                                train_subset=a.train_subset, lr=a.lr, batch_size=128, warmup_epochs=1.0,
                                val_fraction=0.0, seed=seed)["test_acc"]
        except SlimlabError as e:
            if "diverged" not in str(e):
                raise
            atomic_write_json(failed, {"error": str(e)})
            return str(e)


def row_of(way: str, tag: str, e: dict) -> list:
    kw, lat = e["model_kwargs"], e.get("latency")
    accs = " / ".join(f"{100 * x:.2f}" for x in e.get("test_accs", [])) or _not_yet(e)
    return [way, tag, f"{e['macs'] / 1e6:.1f}", f"{e['macs_ratio']:.2f}", f"{100 * e.get('mismatch', 0):+.1f}",
            e["resolution"], f"{kw.get('depth_mult', 1):.2f}", f"{kw['width_mult']:.2f}",
            f"{lat['median_ms']:.2f} [{lat['p10_ms']:.2f}-{lat['p90_ms']:.2f}]" if lat else "-", accs]


def _not_yet(e: dict) -> str:
    if e.get("diverged"):
        return "diverged: seed " + ", ".join(map(str, e["diverged"]))
    return f"not finished: seed {', '.join(map(str, e['left']))}" if e.get("left") else ""


WAYS = ("depth", "width", "resolution", "compound")


def verdicts(data: dict, targets: str) -> list[str]:
    """Per target: the arms' mean accuracy over seeds; the claim holds where compound beats every single-dimension
    arm by more than the largest seed spread, does not hold where an arm beats compound by more than it, and is
    not shown in between (two seeds cannot separate them); not shown yet where an arm has not finished. Then one
    line over every target."""
    out, calls = [], []
    for t in [f"x{float(x):g}" for x in targets.split(",")]:
        missing = [f"{w} ({_not_yet(data[w][t]) or 'not trained'})" for w in WAYS if "test_acc" not in data[w][t]]
        if missing:
            out.append(f"- {t}: not shown yet (left: {'; '.join(missing)}).")
            calls.append("not shown yet")
            continue
        accs = {w: data[w][t]["test_acc"] for w in WAYS}
        spread = max(max(data[w][t]["test_accs"]) - min(data[w][t]["test_accs"]) for w in WAYS)
        rival = max((w for w in WAYS if w != "compound"), key=accs.get)
        margin = accs["compound"] - accs[rival]
        verdict = ("holds" if margin > spread else "does not hold" if -margin > spread
                   else "not shown (within the seed spread)")
        calls.append(verdict)
        worst = max(abs(data[w][t]["mismatch"]) for w in WAYS)
        out.append(f"- {t} MACs (measured {data['depth'][t]['macs_ratio']:.2f}x the base): compound "
                   f"{100 * accs['compound']:.2f}%, the best other arm {rival} {100 * accs[rival]:.2f}% "
                   f"({100 * margin:+.2f} points; means of {len(data['compound'][t]['test_accs'])} seeds): the claim "
                   f"**{verdict}**. Seed spread up to {100 * spread:.2f} points; MACs within {100 * worst:.1f}% "
                   "of the depth arm.")
    overall = calls[0] if len(set(calls)) == 1 else "mixed"
    per = ", ".join(f"x{float(t):g}: {c}" for t, c in zip(targets.split(","), calls))
    out.append(f"- Over the targets: **{overall}** ({per}).")
    return out


# the paper shows the claim as a plot only (Fig. 8: EfficientNet-B0 scaled on ImageNet)
PUBLISHED = ("Published (Tan & Le, ICML 2019, Fig. 8): EfficientNet-B0 scaled on ImageNet by depth, width, resolution "
             "or all three; the paper gives no table of that figure, and its text says compound scaling improves "
             "accuracy by up to 2.5% over the single-dimension methods. Its Table 3 does the same for MobileNets and "
             "ResNet-50 on ImageNet. Neither is a CIFAR-10 figure: the comparison is the shape of the claim "
             "(compound best at equal MACs), not its size.")


def trained_on(out: str) -> tuple[dict | None, str]:
    """The CPU most finished seeds recorded in their summaries (None: none did; the header then names this
    machine), and the note listing cells by CPU when they differ."""
    runs = {p.parent.name: _util.run_machine(json.loads(p.read_text())) or {}
            for p in sorted(Path(out).glob("*-s*/summary.json"))}
    return _util.usual_machine(list(runs.values())), _util.machines_note(runs) if runs else ""


def table_text(a: argparse.Namespace, m0: float, rows: list, data: dict, lat_note: str,
               trained: tuple[dict | None, str] = (None, "")) -> str:
    """The table and its verdicts; ``trained``: :func:`trained_on`'s machine and note."""
    moved = ", ".join(f"{100 * (e['width_vs_paper'] - 1):+.0f}% ({t})" for t, e in data.get("compound", {}).items())
    return (f"EfficientNet-B0 base (width {a.base_width}, depth {a.base_depth}, CIFAR stem, 32x32, "
            f"{m0 / 1e6:.1f}M MACs; no dropout or stochastic depth in these short runs) scaled four ways; each "
            f"trained {a.epochs} epochs on a {a.train_subset or 50000}-image stratified subset of CIFAR-10 (the "
            f"same images for every arm of a seed), batch 128, SGD lr {a.lr} with Nesterov momentum 0.9, weight "
            "decay 5e-4, 1 warm-up epoch then cosine; test accuracy at the last epoch (nothing chosen on the test "
            f"set). {lat_note} {_util.machine_line(trained[0])}{trained[1]}\n\n"
            + _util.md_table(["scaling", "target", "MACs (M)", "x base", "vs depth arm (%)", "resolution", "depth mult",
                        "width mult", "latency b1 (ms) [p10-p90]", "test acc (%), per seed"], rows)
            + "\n\nThe targets are nominal: depth moves in whole blocks, so each is compared at the depth point "
            "nearest it that the other arms can match within 3% (the 'x base' column). The resolution arm's "
            "inputs are the 32x32 images upsampled: more pixels, no new detail; at resolutions that are not a "
            "multiple of 8 the last feature maps carry padding past the image's edge, which costs MACs and brings "
            "nothing. The compound arm's width was "
            f"moved from the paper's beta^phi by {moved} to meet the depth arm's MACs (its depth, too, comes in "
            f"whole blocks).\n\n{PUBLISHED}\n"
            + "\n\nClaim: at equal MACs, compound scaling beats depth, width or resolution alone.\n"
            + ("(not trained: --dry)" if a.dry else "\n".join(verdicts(data, a.targets))) + "\n")


def dry_cost(a: argparse.Namespace, data: dict) -> str:
    runs, n = len(a.seeds.split(",")), a.train_subset or 50000
    cost = sum(e["macs"] for points in data.values() for e in points.values()) * n * a.epochs * runs
    return (f"training cost: {sum(len(p) for p in data.values()) * runs} runs x {n} images x {a.epochs} epochs, "
            f"{cost / 1e15:.2f} PMAC-epochs forward (x3 with the backward pass)")


def main() -> None:
    a = parse_args()
    base_kw, plan = build_plan(a)
    m0, spec = macs_of(base_kw, 32), None if a.dry else cifar_spec()
    data = {way: {tag: run_point(a, plan, base_kw, way, tag, spec) for tag in points} for way, points in plan.items()}
    left = [f"{w} {t}" for w, p in data.items() for t, e in p.items() if e.get("left")]
    if a.dry:
        print(table_text(a, m0, [row_of(w, t, e) for w, p in data.items() for t, e in p.items()], data, "",
                         trained_on(a.out))
              + "\n" + dry_cost(a, data))
        return
    if a.latency and left:
        sys.exit(f"scaling_claim --latency: arms not finished ({', '.join(left)}): it times finished campaigns only")
    with locked(Path(a.out) / f"{a.name}.json"):  # one process at a time times the arms and writes the table
        lat = Path(a.out) / "latency.json"
        arms = {f"{w} {t}": plan[w][t] for w, p in plan.items() for t in p}
        got = arms_latency(lat, arms, a.latency, time_now=not left and not a.partial)  # once all arms trained
        for w, p in data.items():
            for t, e in p.items():
                e["latency"] = got.get(f"{w} {t}")
        note, trained = latency_note(lat), trained_on(a.out)
        table = table_text(a, m0, [row_of(w, t, e) for w, p in data.items() for t, e in p.items()], data, note,
                           trained)
        if a.partial or left:
            done = sum("test_acc" in e for points in data.values() for e in points.values())
            table = (f"**Partial: {done} of {sum(len(p) for p in data.values())} arms finished over every seed** "
                     "(the campaign goes on).\n\n" + table)
            _util.write(a.name + "_partial", {"args": vars(a), "base_macs": m0, "results": data}, table, trained[0])
            if left and not a.partial:
                print(f"left to the process running them: {', '.join(left)}", flush=True)
            return
        _util.write(a.name, {"args": vars(a), "base_macs": m0, "results": data}, table, trained[0])
        plot(data, RESULTS / f"{a.name}.png")


def latency_note(path: Path) -> str:
    if not path.is_file():
        return "Latency: not timed yet (once every arm has trained)."
    quiet = json.loads(path.read_text()).get("quiet")
    return ("Latency: eager PyTorch, batch 1, 1 thread, every arm interleaved in one pass, median [p10-p90] ms, "
            + ("timed again on a quiet machine (--latency)." if quiet else
               "timed when the campaign finished (perhaps beside another job; --latency times them quietly)."))


def plot(data: dict, path: Path) -> None:
    """Accuracy (mean of seeds, with each seed's point) against measured MACs and against CPU latency."""
    from slimlab.io import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    base = data["base"]["x1"]
    for way in WAYS:
        pts = [base] + [data[way][t] for t in sorted(data[way], key=lambda t: float(t[1:]))]
        for i, x in enumerate(([p["macs"] / 1e6 for p in pts], [p["latency"]["median_ms"] for p in pts])):
            line = ax[i].plot(x, [100 * p["test_acc"] for p in pts], marker="o", label=way)[0]
            for xi, p in zip(x, pts):
                ax[i].scatter([xi] * len(p["test_accs"]), [100 * v for v in p["test_accs"]], s=8,
                              color=line.get_color(), alpha=0.5)
    ax[0].set(xlabel="MACs (M)", ylabel="test accuracy (%)", title="accuracy against MACs")
    ax[1].set(xlabel="CPU latency, batch 1 (ms)", ylabel="test accuracy (%)", title="accuracy against latency")
    ax[0].legend()
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
