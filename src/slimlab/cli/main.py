"""The ``slimlab`` command line: thin; it parses, validates and calls :mod:`slimlab.api`.

User mistakes (:class:`SlimlabError`) print one line ``slimlab: error: ...`` and exit with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing

from slimlab.config import TrainConfig, field_types
from slimlab.errors import SlimlabError

COMMANDS: dict[str, typing.Callable[[argparse.ArgumentParser], None]] = {}


def _field_help(cls: type = TrainConfig) -> dict[str, str]:
    """Field comments of a config dataclass, read from its source: the single place options are documented."""
    import inspect

    out = {}
    for line in inspect.getsource(cls).splitlines():
        line = line.strip()
        if ":" in line and "=" in line and "#" in line and not line.startswith("#"):
            out[line.split(":", 1)[0].strip()] = line.split("#", 1)[1].strip()
    return out


def _parse_mapping(text: str) -> dict:
    import yaml

    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"not a YAML/JSON mapping: {text!r}") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping like '{{q: 0.7}}', got {text!r}")
    return v


def _parse_list(text: str) -> list:
    import yaml

    v = yaml.safe_load(text if text.strip().startswith("[") else f"[{text}]")
    if not isinstance(v, list):
        raise argparse.ArgumentTypeError(f"expected a list, got {text!r}")
    return v


def add_config_args(p: argparse.ArgumentParser, cls: type = TrainConfig, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field (``--epochs``, ``--no-augment``...), defaults left to the config."""
    helps = _field_help(cls)
    for name, tp in field_types(cls).items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        kw: dict = {"dest": name, "default": argparse.SUPPRESS, "help": helps.get(name)}
        default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
        if tp is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif tp is dict:
            p.add_argument(flag, type=_parse_mapping, metavar="MAP", **kw)
        elif tp is list:
            p.add_argument(flag, type=_parse_list, metavar="LIST", **kw)
        else:
            if default not in (dataclasses.MISSING, "") and kw["help"]:
                kw["help"] += f" (default: {default})"
            p.add_argument(flag, type=tp, metavar=name.upper(), **kw)


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn
    return deco


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _train_args(args: argparse.Namespace) -> dict:
    skip = {"cmd", "func", "config", "set", "resume"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def cmd_train(args: argparse.Namespace) -> None:
    from slimlab import api
    from slimlab.config import resolve

    if args.resume:
        summary = api.resume(args.resume, args.set)
    else:
        cfg = resolve(TrainConfig, args.config, _train_args(args), args.set)
        summary = api.train(cfg)
    print_summary(summary)


def print_summary(s: dict) -> None:
    if s.get("rank", 0):
        return
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    print(f"{s.get('model')} on {s.get('data')}: best val {pct(s.get('best_val_acc'))}, "
          f"test {pct(s.get('test_acc'))} ({s.get('params', 0) / 1e6:.3f}M params, {s.get('macs', 0) / 1e6:.1f}M MACs,"
          f" {s.get('images_per_s', 0):.0f} img/s, {s.get('wall_s', 0):.1f}s) -> {s.get('out')}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from slimlab import api

    r = api.evaluate_checkpoint(args.checkpoint, args.data, args.root, args.download, args.device)
    if args.json:
        _print_json(r)
    else:
        print(f"{r['model']} on {r['data']} test: {100 * r['test_acc']:.2f}% ({r['n']} images, "
              f"{r['params'] / 1e6:.3f}M params, {r['macs'] / 1e6:.1f}M MACs)")


def cmd_models(args: argparse.Namespace) -> None:
    from slimlab.models import create_model, get_entry, list_models
    from slimlab.profile import count_macs, count_params

    rows = []
    for name in list_models(args.family):
        e = get_entry(name)
        size = e.input_size if not args.input_size else args.input_size
        m = create_model(name, args.num_classes or (10 if e.input_size == 32 else 1000))
        rows.append((name, e.family, count_params(m), count_macs(m, size), size, e.doc))
    if args.json:
        _print_json([dict(zip(("name", "family", "params", "macs", "input_size", "doc"), r)) for r in rows])
        return
    print(f"{'model':22} {'family':13} {'params':>9} {'MACs':>9} {'input':>5}  description")
    for n, f, p, m, s, d in rows:
        print(f"{n:22} {f:13} {p / 1e6:8.2f}M {m / 1e6:8.1f}M {s:5d}  {d}")
    print("any torchvision classifier as tv:NAME (e.g. tv:resnet18)")


def cmd_profile(args: argparse.Namespace) -> None:
    from slimlab.profile import profile_model

    model, size, name = _model_or_checkpoint(args.model, args.input_size, args.num_classes)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    r = profile_model(model, size, tuple(args.batch), threads=args.threads or None, iters=args.iters,
                      device=args.device)
    r["model"] = name
    if args.onnx:
        from slimlab.export import onnx_latency

        r["onnx"] = [onnx_latency(model, size, b, iters=args.iters) for b in args.batch]
    if args.json:
        _print_json(r)
        return
    print(f"{name}: {r['params'] / 1e6:.3f}M params, {r['macs'] / 1e6:.2f}M MACs at {size}x{size}")
    for lat in r["latency"]:
        print(f"  PyTorch {lat['device']} batch {lat['batch']:3d}: median {lat['median_ms']:.2f} ms "
              f"(p10 {lat['p10_ms']:.2f}, p90 {lat['p90_ms']:.2f}), {lat['images_per_s']:.0f} img/s, "
              f"{lat['threads']} threads")
    for lat in r.get("onnx", []):
        print(f"  ONNX Runtime cpu batch {lat['batch']:3d}: median {lat['median_ms']:.2f} ms, "
              f"{lat['images_per_s']:.0f} img/s, {lat['threads']} threads")


def _model_or_checkpoint(spec: str, input_size: int, num_classes: int):
    """A registry name or a checkpoint path/run directory -> (model, input size, label)."""
    from pathlib import Path

    if Path(spec).exists():
        from slimlab.engine import load_checkpoint
        from slimlab.models.io import model_from_checkpoint

        ck = load_checkpoint(spec)
        size = input_size or int(ck.get("data", {}).get("image_size", 32))
        return model_from_checkpoint(ck), size, f"{ck['model_name']} ({ck['path']})"
    from slimlab.models import create_model, get_entry

    e = get_entry(spec)
    return create_model(spec, num_classes or (10 if e.input_size == 32 else 1000)), input_size or e.input_size, spec


def build_parser() -> argparse.ArgumentParser:
    from slimlab import __version__

    parser = argparse.ArgumentParser(prog="slimlab", description="Small, fast image classifiers that stay accurate "
                                     "when their training labels are wrong.")
    parser.add_argument("--version", action="version", version=f"slimlab {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a model (any loss, noise, init), resumable")
    p.add_argument("--config", help="YAML config (e.g. a run's config.yaml); flags override it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last.pt")
    add_config_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a checkpoint")
    p.add_argument("checkpoint", help="a .pt file or a run directory")
    p.add_argument("--data", help="data set (default: the checkpoint's)")
    p.add_argument("--root", default="~/.cache/slimlab/data")
    p.add_argument("--download", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("models", help="the model registry with params and MACs")
    p.add_argument("--family")
    p.add_argument("--input-size", type=int, default=0)
    p.add_argument("--num-classes", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("profile", help="params, multiply-adds and latency of a model or checkpoint")
    p.add_argument("model", help="registry name, tv:NAME, or a checkpoint / run directory")
    p.add_argument("--input-size", type=int, default=0, help="default: the model's (32 for CIFAR models)")
    p.add_argument("--num-classes", type=int, default=0)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's)")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--device", default="cpu")
    p.add_argument("--onnx", action=argparse.BooleanOptionalAction, default=True,
                   help="also ONNX Runtime latency (default: on)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_profile)

    for register in COMMANDS.values():
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from slimlab.cli import extra  # noqa: F401  (registers the other commands)
    from slimlab.engine.distributed import cleanup

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SlimlabError as e:
        print(f"slimlab: error: {e}", file=sys.stderr)
        cleanup()
        return 2
    except KeyboardInterrupt:
        print("slimlab: interrupted (resume with `slimlab train --resume RUN_DIR`)", file=sys.stderr)
        cleanup()
        return 130
    except BaseException:
        cleanup()
        raise
    try:
        cleanup(sync=True)
    except RuntimeError as e:  # another rank failed and left while this one waited for it
        print(f"slimlab: error: another process of this run failed: {str(e).splitlines()[0]}", file=sys.stderr)
        cleanup()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
