"""The ``slimlab`` command line: thin. It parses, validates and calls a task of the one table.

Every command's options are its task's config fields (``slimlab.tasks.table.TASKS``, plus ``run``
and ``demo``); printing a result is the only thing each command adds (:mod:`slimlab.cli.output`).
User mistakes (:class:`SlimlabError`) print one line ``slimlab: error: ...`` and exit with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import inspect
import json
import sys
import types
import typing
from pathlib import Path

from slimlab.cli import output
from slimlab.config import TrainConfig, check_ranges, field_types, parse_yaml, resolve
from slimlab.errors import SlimlabError

SPEC = Path(__file__).with_name("commands.json")  # the command line, written from the task table (no torch)


def commands() -> dict:
    """name -> Task of every command (imports the tasks, and torch with them)."""
    from slimlab.tasks import demo, run
    from slimlab.tasks.table import TASKS, Task

    # the recipe runner and the demo run other tasks: they sit above the table but are commands like the rest
    return {**TASKS,
            "demo": Task("demo", demo.Config, demo.run, "the main job: noisy data -> CE and PENCIL -> label issues -> "
                         "ThiNet and weight-sum pruning -> profile -> ONNX -> report"),
            "run": Task("run", run.Config, run.run, "run (or continue) a recipe: a pipeline of steps")}


def _field_help(cls: type = TrainConfig) -> dict[str, str]:
    """Field comments of a config dataclass (and its bases), read from the source: options are documented once."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for line in inspect.getsource(klass).splitlines():
            line = line.strip()
            if ":" in line and "=" in line and "#" in line and not line.startswith("#"):
                out[line.split(":", 1)[0].strip()] = line.split("#", 1)[1].strip()
    return out


def _parse_as(text: str, yaml_text: str, kind: type, what: str, expected: str):
    """``yaml_text`` through the bounded YAML loader, as ``kind``; argparse's one-line errors otherwise."""
    try:
        v = parse_yaml(yaml_text, "value")
    except SlimlabError as e:
        raise argparse.ArgumentTypeError(f"not a {what}: {text!r} ({str(e).removeprefix('value: ')})") from None
    if not isinstance(v, kind):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def _parse_mapping(text: str) -> dict:
    return _parse_as(text, text, dict, "YAML/JSON mapping", "a mapping like '{q: 0.7}'")


def _parse_list(text: str) -> list:
    return _parse_as(text, text if text.strip().startswith("[") else f"[{text}]", list, "YAML list", "a list")


def _default(cls: type, name: str) -> typing.Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


_TYPES = {"int": int, "float": float, "str": str}


def config_fields(cls: type = TrainConfig, skip: tuple[str, ...] = ()) -> list[dict]:
    """The command-line options of a config dataclass, as plain data: one entry per field (``--epochs``,
    ``--no-augment``...). A config class may declare ``POSITIONAL`` fields, ``CHOICES``, ``NARGS`` (list
    fields given as several values, with their element type), ``APPEND`` (repeatable flags), ``ALIASES`` and
    ``OPTIONAL_POSITIONAL`` (positionals another option may stand in for)."""
    helps = _field_help(cls)
    positional = getattr(cls, "POSITIONAL", ())
    aliases = {new: old for old, new in getattr(cls, "ALIASES", {}).items()}
    out = []
    for name, tp in field_types(cls).items():
        if name in skip:
            continue
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # ``float | None``: an optional float
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        default = _default(cls, name)
        help_ = helps.get(name) or ""
        if default not in (None, "", [], {}) and tp is not bool:
            help_ = f"{help_} (default: {default})".strip()
        elif tp is bool and default is True:  # an on/off flag that is on: say so, and how to turn it off
            help_ = f"{help_} (default: on; --no-{name.replace('_', '-')} turns it off)".strip()
        f: dict = {"name": name, "type": tp.__name__, "help": help_ or None,
                   "flags": ["--" + name.replace("_", "-")] + (["--" + aliases[name].replace("_", "-")]
                                                               if name in aliases else [])}
        if name in getattr(cls, "CHOICES", {}):
            f["choices"] = list(cls.CHOICES[name])
        if name in positional:
            f["positional"] = True
            if name in getattr(cls, "OPTIONAL_POSITIONAL", ()):
                f["optional"] = True
        elif name in getattr(cls, "APPEND", ()):
            f["append"] = True
        elif name in getattr(cls, "NARGS", {}):
            f["nargs"] = cls.NARGS[name].__name__
        out.append(f)
    return out


def add_config_args(p: argparse.ArgumentParser, fields: list[dict], resumable: bool = False) -> None:
    """One flag per entry of :func:`config_fields`; defaults are left to the config. A resumable command's
    positionals may be left out for ``--resume`` (:func:`dispatch` asks for them otherwise)."""
    for f in fields:
        kw: dict = {"help": f["help"]}
        if "choices" in f:
            kw["choices"] = f["choices"]
        if f.get("positional"):
            if resumable or f.get("optional"):
                kw["default"] = argparse.SUPPRESS
            p.add_argument(f["name"], nargs=("*" if resumable else "+") if f["type"] == "list" else
                           ("?" if resumable or f.get("optional") else None), **kw)
            continue
        kw.update(dest=f["name"], default=argparse.SUPPRESS)
        if f["type"] == "bool":
            p.add_argument(*f["flags"], action=argparse.BooleanOptionalAction, **kw)
        elif f.get("append"):
            p.add_argument(*f["flags"], action="append", metavar="VALUE", **kw)
        elif "nargs" in f:
            p.add_argument(*f["flags"], nargs="+", type=_TYPES[f["nargs"]], metavar=f["name"].upper(), **kw)
        elif f["type"] == "dict":
            p.add_argument(*f["flags"], type=_parse_mapping, metavar="MAP", **kw)
        elif f["type"] == "list":
            p.add_argument(*f["flags"], type=_parse_list, metavar="LIST", **kw)
        else:
            p.add_argument(*f["flags"], type=_TYPES[f["type"]], metavar=f["name"].upper(), **kw)


def command_spec() -> dict:
    """Every command's help and options, computed from the task table (what ``commands.json`` ships)."""
    return {name: {"help": t.help, "config_flags": getattr(t.config, "CONFIG_FLAGS", True),
                   "resumable": t.resume is not None, "resume_may_change": list(t.resume_may_change),
                   "fields": config_fields(t.config, t.cli_skip)} for name, t in commands().items()}


def write_spec() -> None:
    """Regenerate ``commands.json`` (``python -m slimlab.cli.main --write-spec``; a test fails when it is stale)."""
    SPEC.write_text(json.dumps(command_spec(), indent=1, sort_keys=True) + "\n")


def load_spec() -> dict:
    return json.loads(SPEC.read_text())


class Parser(argparse.ArgumentParser):
    """argparse with slimlab's one-line error format (``slimlab: error: ...``, exit 2) instead of a usage block."""

    def error(self, message: str) -> typing.NoReturn:
        cmd = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        print(f"slimlab: error: {message} (see `slimlab {cmd + ' ' if cmd else ''}--help`)", file=sys.stderr)
        sys.exit(2)

    def parse_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 - argparse's signature
        """As argparse's, but an unknown flag points to the command's own help, not ``slimlab --help``."""
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            cmd = getattr(ns, "cmd", None)
            print(f"slimlab: error: unrecognized arguments: {' '.join(extra)} (see `slimlab "
                  f"{cmd + ' ' if cmd else ''}--help`)", file=sys.stderr)
            sys.exit(2)
        return ns


def build_parser(spec: dict | None = None) -> argparse.ArgumentParser:
    """The parser, built from the shipped command table: ``slimlab --help`` and ``slimlab CMD --help`` import
    neither the tasks nor torch."""
    from slimlab import __version__

    spec = spec or load_spec()
    parser = Parser(prog="slimlab", description="Small, fast image classifiers that stay accurate "
                                     "when their training labels are wrong.")
    parser.add_argument("--version", action="version", version=f"slimlab {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True, parser_class=Parser)
    for name, cmd in spec.items():
        p = sub.add_parser(name, help=cmd["help"], description=cmd["help"])
        if cmd["config_flags"]:
            p.add_argument("--config", help="YAML with this command's options; flags override it")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
        if cmd.get("resumable"):
            may = cmd.get("resume_may_change", [])
            p.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run where it stopped, with its own "
                           f"config (--set may change only {', '.join(may[:8])}{', ...' if len(may) > 8 else ''})")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument("--allow-module", action="append", default=[], metavar="MODULE",
                       help="trust the module of a module:MODULE:callable model that a checkpoint names (it imports "
                            "and runs that module's code); repeatable; also SLIMLAB_ALLOW_MODULES=a,b")
        add_config_args(p, cmd["fields"], cmd.get("resumable", False))
        p.set_defaults(func=run_command)
    return parser


def dispatch(args: argparse.Namespace) -> dict:
    """Resolve the command's config (defaults < --config < flags < --set) and run its task."""
    task = commands()[args.cmd]
    if getattr(args, "allow_module", None):
        from slimlab.models.registry import allow_module

        for module in args.allow_module:
            allow_module(module)
    names = {f.name for f in dataclasses.fields(task.config)}
    flags = {k: v for k, v in vars(args).items() if k in names}
    allow_typed_modules(flags, getattr(args, "set", None) or [])
    if getattr(args, "resume", None):
        if flags or getattr(args, "config", None):
            given = ", ".join(["--config"] * bool(getattr(args, "config", None)) + ["--" + k.replace("_", "-")
                                                                                 for k in flags])
            raise SlimlabError(f"--resume continues a run with its own config: drop {given} "
                               "(use --set for the options a resume may change)")
        return task.resume(args.resume, args.set)
    missing = [f.name for f in dataclasses.fields(task.config)
               if f.name in getattr(task.config, "POSITIONAL", ()) and f.name not in flags]
    if getattr(task, "resume", None) and missing:
        raise SlimlabError(f"the following arguments are required: {', '.join(missing)} (or --resume RUN_DIR)")
    if not getattr(task.config, "CONFIG_FLAGS", True):
        cfg = check_ranges(task.config(**flags))
    else:
        cfg = resolve(task.config, args.config, flags, args.set)
    args._cfg = cfg  # the task fills in its output directory: the interrupt hint reads it from here
    return task.run(cfg)


def allow_typed_modules(flags: dict, sets: list[str]) -> None:
    """A ``module:`` model typed on this command line (``--model``, ``--set model=...``) is the user's to run; one
    read from a file (``--config``, a recipe, a run's config.yaml, a checkpoint) needs ``--allow-module``."""
    from slimlab.models.registry import allow_module

    typed = [flags.get("model")] + [s.split("=", 1)[1].strip() for s in sets if s.split("=", 1)[0].strip() == "model"]
    for value in typed:
        if isinstance(value, str) and value.startswith("module:"):
            allow_module(value)


def run_command(args: argparse.Namespace) -> None:
    result = dispatch(args)
    if args.json:
        if not result.get("rank", 0):
            print(json.dumps(result, indent=2, default=str))
    else:
        output.show(args.cmd, result)


def resume_hint(args: argparse.Namespace) -> str:
    """How to continue the interrupted command: the command that resumes that step."""
    if args.cmd in ("train", "pretrain", "probe", "prune"):  # runs of the training loop, and prune: resumable
        rundir = sys.modules.get("slimlab.engine.rundir")
        claimed = rundir.CLAIMED[-1] if rundir is not None and rundir.CLAIMED else None  # a default --out, resolved
        run_dir = getattr(args, "resume", None) or getattr(getattr(args, "_cfg", None), "out", None) or claimed
        return f"`slimlab {'prune' if args.cmd == 'prune' else 'train'} --resume {run_dir or 'RUN_DIR'}` continues it"
    if args.cmd in ("run", "demo"):
        return "the same command continues it: finished steps are skipped and a training step resumes"
    if args.cmd == "labels":
        return "the same command continues it (k-fold keeps its finished folds)"
    if hasattr(getattr(args, "_cfg", None), "overwrite"):
        return "run the same command again (with --overwrite) to start it over"
    return "run the same command again"


# errors of the machine rather than of the code: a full disk, a read-only or forbidden directory
_OS_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENAMETOOLONG, errno.ENOTDIR,
              errno.EEXIST, errno.EISDIR}


def cleanup(sync: bool = False) -> None:
    """End the process group, if a command started one (nothing to do, and no torch import, otherwise)."""
    if "torch" in sys.modules:
        from slimlab.engine.distributed import cleanup as end

        end(sync=sync)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except SlimlabError as e:
        print(f"slimlab: error: {e}", file=sys.stderr)
        cleanup()
        return 2
    except OSError as e:
        cleanup()
        if e.errno not in _OS_ERRORS:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"slimlab: error: cannot write{where}: {e.strerror} (files already written are intact)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"slimlab: interrupted; {resume_hint(args)}", file=sys.stderr)
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
    if sys.argv[1:] == ["--write-spec"]:
        write_spec()
        sys.exit(0)
    sys.exit(main())
