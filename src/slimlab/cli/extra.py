"""Commands beyond train/evaluate/models/profile: prune, pretrain, probe, labels, scale, demo, report, export, run."""

from __future__ import annotations

import argparse

from slimlab.cli.main import add_config_args, command, print_summary


def _prune(args: argparse.Namespace) -> None:
    from slimlab import api
    from slimlab.config import resolve
    from slimlab.prune import PruneConfig

    cfg = resolve(PruneConfig, args.config, {k: v for k, v in vars(args).items()
                                             if k not in ("cmd", "func", "config", "set")}, args.set)
    s = api.prune(cfg)
    o, p = s["original"], s["pruned"]
    ft = s.get("finetuned", {}).get("test_acc")
    lat = s.get("latency_speedup", {})
    print(f"{s['model']} {s['method']} ratio {s['ratio']:.3f}: "
          f"params {o['params'] / 1e6:.3f}M -> {p['params'] / 1e6:.3f}M,"
          f" MACs {o['macs'] / 1e6:.1f}M -> {p['macs'] / 1e6:.1f}M ({s['macs_reduction']:.2f}x fewer)")
    print(f"  test accuracy: original {100 * o['test_acc']:.2f}%, pruned {100 * p['test_acc']:.2f}%"
          + (f", fine-tuned {100 * ft:.2f}%" if ft is not None else "")
          + (f"; CPU latency speed-up {lat.get('batch1', 0):.2f}x (batch 1), {lat.get('batch64', 0):.2f}x (batch 64)"
             if lat else "") + f"; pruning took {s['prune_s']:.1f}s -> {s['out']}")


@command("prune")
def register_prune(sub) -> None:
    from slimlab.prune import PruneConfig

    p = sub.add_parser("prune", help="structural filter pruning (ThiNet, APoZ, weight sum, random) + fine-tuning")
    p.add_argument("checkpoint", help="a trained checkpoint (.pt) or run directory")
    p.add_argument("--config", help="YAML with prune options")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    add_config_args(p, PruneConfig, skip=("checkpoint",))
    p.set_defaults(func=_prune)


__all__ = ["print_summary"]


def _labels(args: argparse.Namespace) -> None:
    from slimlab.noise.label_issues import find_label_issues

    r = find_label_issues(args.run, args.folds, args.cv_epochs or None, args.grid)
    line = (f"{r['flagged']} of {r['train_samples']} training labels flagged ({100 * r['flagged_fraction']:.1f}%, "
            f"source: {r['source']})")
    if "precision" in r:
        line += (f"; against the {r['true_flips']} injected flips: precision {100 * r['precision']:.1f}%, "
                 f"recall {100 * r['recall']:.1f}%; corrected labels {100 * r['corrected_accuracy']:.1f}% right "
                 f"vs given {100 * r['given_accuracy']:.1f}%")
    print(line + f" -> {r['csv']}")


@command("labels")
def register_labels(sub) -> None:
    p = sub.add_parser("labels", help="flag suspicious training labels of a run (label_issues.csv)")
    p.add_argument("run", help="a run directory")
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds for non-PENCIL runs")
    p.add_argument("--cv-epochs", type=int, default=0, help="epochs per fold (default: the run's)")
    p.add_argument("--grid", type=int, default=24, help="images in label_issues.png (0: none)")
    p.set_defaults(func=_labels)
