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


from slimlab.ssl.rotnet import ROTNET_DEFAULTS  # noqa: E402


def _train_from(args: argparse.Namespace, base: dict, skip: tuple[str, ...] = ()) -> None:
    from slimlab import api
    from slimlab.config import TrainConfig, resolve

    flags = {k: v for k, v in vars(args).items() if k not in ("cmd", "func", "config", "set", *skip)}
    cfg = resolve(TrainConfig, args.config, {**base, **flags}, args.set)
    print_summary(api.train(cfg))


def _pretrain(args: argparse.Namespace) -> None:
    from slimlab.errors import SlimlabError

    if args.method != "rotnet":
        raise SlimlabError(f"unknown pretraining method '{args.method}' (rotnet)")
    # RotNet's official 4-block NIN schedule: 200 epochs, lr 0.1 x0.2 at epochs 60/120/160 (scaled to --epochs)
    _train_from(args, ROTNET_DEFAULTS, skip=("method",))


@command("pretrain")
def register_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining (RotNet); labels are never read")
    p.add_argument("--method", default="rotnet", help="rotnet")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    add_config_args(p, skip=("loss",))
    p.set_defaults(func=_pretrain)


def _probe(args: argparse.Namespace) -> None:
    from slimlab.engine import load_checkpoint

    ck = load_checkpoint(args.checkpoint)
    size = int(ck.get("data", {}).get("image_size", 32))
    base = {"model": "probe", "init": args.checkpoint, "data": ck.get("config", {}).get("data", "digits"),
            "model_kwargs": {"trunk": ck["model_name"], "trunk_kwargs": ck.get("model_kwargs", {}),
                             "trunk_classes": ck["num_classes"], "block": args.block, "head": args.head,
                             "input_size": size}}
    _train_from(args, base, skip=("checkpoint", "block", "head"))


@command("probe")
def register_probe(sub) -> None:
    p = sub.add_parser("probe", help="train a classifier on one block of a frozen pretrained trunk")
    p.add_argument("checkpoint", help="the pretrained trunk (.pt or run directory)")
    p.add_argument("--block", type=int, default=2, help="which block's features (1-based; NIN trunks)")
    p.add_argument("--head", default="linear", help="linear | mlp | conv")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    add_config_args(p, skip=("model", "model_kwargs", "init"))
    p.set_defaults(func=_probe)


def _scale(args: argparse.Namespace) -> None:
    import json

    from slimlab.scaling.search import describe, grid_search

    if args.action == "apply":
        r = describe(args.base, args.phi, args.alpha, args.beta, args.gamma, args.num_classes,
                     args.input_size or None)
        if args.out:
            from pathlib import Path

            import yaml

            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "model.yaml").write_text(yaml.safe_dump(
                {"model": args.base, "model_kwargs": r["model_kwargs"], "image_size": r["resolution"]}))
        if args.json:
            print(json.dumps(r, indent=2))
            return
        kw = ", ".join(f"{k}={v:.4g}" for k, v in r["model_kwargs"].items())
        print(f"{args.base} scaled by phi={args.phi:g} (alpha={args.alpha:g}, beta={args.beta:g}, "
              f"gamma={args.gamma:g}):"
              f" {kw}, resolution {r['resolution']}; {r['params'] / 1e6:.2f}M params, {r['macs'] / 1e6:.1f}M MACs "
              f"({r['macs_ratio']:.2f}x the base; alpha*beta^2*gamma^2 = {r['nominal_ratio']:.2f}x nominal)")
        return
    r = grid_search(args.base, args.data, args.budget, args.tolerance, args.grid_step, args.epochs, args.train_subset,
                    args.max_candidates, args.input_size or None, out=args.out or "runs/scale-search",
                    lr=args.lr, batch_size=args.batch_size)
    c = r["chosen"]
    print(f"chosen alpha={c['alpha']:g}, beta={c['beta']:g}, gamma={c['gamma']:g} of {len(r['rows']) - 1} candidates "
          f"-> {args.out or 'runs/scale-search'}/search.md, search.png")


@command("scale")
def register_scale(sub) -> None:
    p = sub.add_parser("scale", help="EfficientNet compound scaling: grid search (step 1) or apply (step 2)")
    p.add_argument("action", choices=["search", "apply"])
    p.add_argument("--base", default="efficientnet_b0")
    p.add_argument("--data", default="digits", help="proxy data set for the search")
    p.add_argument("--budget", type=float, default=2.0, help="MACs ratio at phi=1 (the paper: 2)")
    p.add_argument("--tolerance", type=float, default=0.1, help="relative tolerance on the measured MACs ratio")
    p.add_argument("--grid-step", type=float, default=0.05)
    p.add_argument("--max-candidates", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2, help="training epochs per candidate")
    p.add_argument("--train-subset", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--phi", type=float, default=1.0)
    p.add_argument("--alpha", type=float, default=1.2)
    p.add_argument("--beta", type=float, default=1.1)
    p.add_argument("--gamma", type=float, default=1.15)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--input-size", type=int, default=0, help="base resolution (default: the model's / the data's)")
    p.add_argument("--out", default="")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_scale)


def _export(args: argparse.Namespace) -> None:
    from pathlib import Path

    from slimlab.engine import load_checkpoint
    from slimlab.export import export_onnx, export_torchscript
    from slimlab.models.io import model_from_checkpoint

    ck = load_checkpoint(args.run)
    model = model_from_checkpoint(ck)
    size = args.input_size or int(ck.get("data", {}).get("image_size", 32))
    base = Path(ck["path"]).parent
    if args.format == "onnx":
        r = export_onnx(model, args.out or base / "model.onnx", size)
        print(f"wrote {r['path']} ({r['bytes'] / 1e6:.2f} MB); ONNX Runtime matches PyTorch within "
              f"{r['max_abs_diff']:.1e}")
    else:
        r = export_torchscript(model, args.out or base / "model.ts.pt", size)
        print(f"wrote {r['path']} ({r['bytes'] / 1e6:.2f} MB); traced outputs within {r['max_abs_diff']:.1e}")


@command("export")
def register_export(sub) -> None:
    p = sub.add_parser("export", help="export a run's model to ONNX (checked with ONNX Runtime) or TorchScript")
    p.add_argument("run", help="run directory or checkpoint")
    p.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    p.add_argument("--out", default="")
    p.add_argument("--input-size", type=int, default=0)
    p.set_defaults(func=_export)


def _demo(args: argparse.Namespace) -> None:
    import time

    from slimlab.demo import run_demo

    t0 = time.time()
    r = run_demo(args.out, data=args.data, model=args.model, noise=args.noise, epochs=args.epochs,
                 finetune_epochs=args.finetune_epochs, train_subset=args.train_subset)
    print(f"\n{'model':12} {'params':>8} {'MACs':>8} {'test acc':>9} {'CPU ms':>8} {'ONNX ms':>8}")
    for name, params, macs, acc, t, o in r["rows"]:
        print(f"{name:12} {params / 1e6:7.3f}M {macs / 1e6:7.1f}M {100 * acc:8.2f}% "
              f"{(t or 0):8.2f} {(o or 0):8.2f}")
    lab = r["labels"]
    if "precision" in lab:
        print(f"label issues: PENCIL flagged {lab['flagged']} labels, precision {100 * lab['precision']:.1f}%, "
              f"recall {100 * lab['recall']:.1f}% against the injected flips")
    print(f"exported {r['export']['path']} (from {r['export']['from']})")
    print(f"report: {r['report']}  ({time.time() - t0:.0f}s)")


@command("demo")
def register_demo(sub) -> None:
    p = sub.add_parser("demo", help="the main job: noisy data -> CE and PENCIL -> label issues -> ThiNet and "
                                    "weight-sum pruning -> profile -> ONNX -> report")
    p.add_argument("--data", default="digits")
    p.add_argument("--model", default="resnet20")
    p.add_argument("--noise", default="symmetric:0.4")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--train-subset", type=int, default=0)
    p.add_argument("--out", default="runs/demo")
    p.set_defaults(func=_demo)


def _run(args: argparse.Namespace) -> None:
    from slimlab.config import parse_set
    from slimlab.pipeline import load_recipe, run_recipe

    recipe = load_recipe(args.recipe)
    if args.check:
        from slimlab.pipeline import check_recipe

        steps = check_recipe(recipe, args.budget, parse_set(args.set))
        print(f"{recipe['name']}: {len(steps)} steps valid ({', '.join(steps)})")
        return
    out = args.out or f"runs/{recipe['name']}" + (f"-{args.budget}" if args.budget else "")
    results = run_recipe(recipe, out, args.budget, parse_set(args.set))
    for name, r in results.items():
        shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        print(f"{name}: {shown}")


@command("run")
def register_run(sub) -> None:
    p = sub.add_parser("run", help="run (or continue) a recipe: a pipeline of steps")
    p.add_argument("recipe", help="a recipe YAML (see recipes/)")
    p.add_argument("--budget", help="a budget of the recipe, e.g. small")
    p.add_argument("--out", default="")
    p.add_argument("--set", action="append", default=[], metavar="VAR=VALUE", help="override a recipe variable")
    p.add_argument("--check", action="store_true", help="validate every step's options; run nothing")
    p.set_defaults(func=_run)


def _report(args: argparse.Namespace) -> None:
    from slimlab.report import build_report

    out = args.out or ("report.md" if args.format == "md" else "report.html")
    print(f"wrote {build_report(args.runs, out, args.format, args.title)}")


@command("report")
def register_report(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page (or Markdown) over run directories")
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", default="")
    p.add_argument("--format", choices=["html", "md"], default="html")
    p.add_argument("--title", default="slimlab report")
    p.set_defaults(func=_report)
