"""Recipes: pipelines of steps whose outputs feed the next (``slimlab run recipe.yaml``).

A recipe is YAML::

    name: thinet-resnet56-cifar10
    vars: {data: cifar10, epochs: 160}      # slimlab run ... --set data=imagefolder:PATH
    budgets:                       # --budget small overrides vars for a CPU-sized run
      small: {epochs: 3, train_subset: 2000}
    steps:
      - {name: train, kind: train, with: {data: "${data}", model: resnet56, epochs: "${epochs}"}}
      - {name: thinet, kind: prune, with: {checkpoint: "${train}/best.pt", method: thinet, ratio: 0.5}}

``${var}`` is a variable and ``${step}`` the output directory of an earlier step (a string made only
of one reference keeps the variable's type). A step's kind is a task of :data:`slimlab.tasks.table.TASKS`
(train, evaluate, models, profile, prune, pretrain, probe, labels, scale, export, report) or
``scale_search``; its ``with`` options are that task's config. Each step writes into
``OUT/<step name>``; when it succeeds a ``step.json`` marker (with a hash of the step's resolved
options) is written atomically. Re-running skips every step whose marker matches, and a training
step killed mid-way resumes from ``last.pt``, so a recipe killed at any point continues where it stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimlab.config import from_dict, load_yaml, parse_set, to_dict
from slimlab.engine import load_checkpoint
from slimlab.engine.rundir import config_run_id, lock
from slimlab.errors import SlimlabError
from slimlab.io import atomic_write_json
from slimlab.tasks.common import options_changed
from slimlab.tasks.table import KINDS, TASKS, task_for_kind
from slimlab.tasks.train import config_difference, train

STEP_KINDS = tuple(sorted([*TASKS, *KINDS]))
_REF = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


RECIPES = Path(__file__).resolve().parents[1] / "recipes"  # shipped with the package: ``slimlab run fast_cifar10``


def shipped_recipes() -> list[str]:
    """The names of the recipes that ship with slimlab (``slimlab run NAME``)."""
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def recipe_path(spec: str | Path) -> Path:
    """A recipe file, or the name of a shipped recipe (``fast_cifar10``, ``fast_cifar10.yaml``): a file of that
    name in the current directory comes first."""
    p = Path(spec)
    if p.is_file() or len(p.parts) != 1:
        return p
    stem = p.stem if p.suffix in (".yaml", ".yml") else p.name
    for local in (Path(f"{stem}.yaml"), Path(f"{stem}.yml")):  # the user's own copy comes first
        if local.is_file():
            return local
    shipped = RECIPES / f"{stem}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(shipped_recipes())
    raise SlimlabError(f"recipe '{spec}' not found: neither a file nor a shipped recipe ({known})")


def load_recipe(path: str | Path) -> dict:
    """A recipe file (YAML: ``steps``, ``vars``, budgets), or a shipped recipe's name, checked for shape before
    anything runs."""
    path = recipe_path(path)
    r = load_yaml(path)
    if not isinstance(r.get("steps"), list) or not r["steps"]:
        raise SlimlabError(f"{path}: a recipe needs a non-empty 'steps' list")
    if not isinstance(r.get("vars") or {}, dict):
        raise SlimlabError(f"{path}: 'vars' must be a mapping of names to values")
    budgets = r.get("budgets") or {}
    if not isinstance(budgets, dict) or not all(isinstance(v or {}, dict) for v in budgets.values()):
        raise SlimlabError(f"{path}: 'budgets' must map budget names to mappings of variables")
    if "name" in r and not isinstance(r["name"], str):
        raise SlimlabError(f"{path}: 'name' must be a string")
    r.setdefault("name", Path(path).stem)
    r["_dir"] = str(Path(path).resolve().parent)
    return r


def _subst(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str):
        m = _REF.fullmatch(value)
        if m:
            if m.group(1) not in env:
                raise SlimlabError(f"recipe: unknown reference ${{{m.group(1)}}}")
            return env[m.group(1)]

        def rep(mm):
            if mm.group(1) not in env:
                raise SlimlabError(f"recipe: unknown reference ${{{mm.group(1)}}}")
            return str(env[mm.group(1)])

        return _REF.sub(rep, value)
    if isinstance(value, dict):
        return {k: _subst(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, env) for v in value]
    return value


def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _env(recipe: dict, out: Path, budget: str | None, overrides: dict | None) -> dict[str, Any]:
    env: dict[str, Any] = dict(recipe.get("vars") or {})
    if budget:
        budgets = recipe.get("budgets") or {}
        if budget not in budgets:
            raise SlimlabError(f"recipe {recipe['name']} has no budget '{budget}' "
                               f"(has: {', '.join(budgets) or 'none'})")
        env.update(budgets[budget] or {})
    unknown = sorted(set(overrides or {}) - set(env))
    if unknown:
        raise SlimlabError(f"recipe {recipe['name']} has no variable(s) {', '.join(unknown)}")
    env.update(overrides or {})
    env["recipe_dir"] = recipe.get("_dir", ".")
    env["out"] = str(out)
    return env


def _step_config(kind: str, opts: Any, where: str, step_dir: Path | None = None, allowed: tuple[Path, ...] = ()):
    """(task, its typed config) of a recipe step; ``step_dir`` becomes the config's ``out``.

    A step writes only inside the recipe's ``--out`` (``allowed[0]``) or a path the user gave on the command
    line (the other ``allowed``): its ``out`` is its own directory, and a directory it writes into (a labels
    step's ``run``) must lie there."""
    task, raw = task_for_kind(kind)
    if not isinstance(opts, dict):
        raise SlimlabError(f"{where}: 'with' must be a mapping of options, got {type(opts).__name__}")
    raw.update(opts)
    names = {f.name for f in dataclasses.fields(task.config)}
    if step_dir is not None and "out" in names:
        raw["out"] = str(step_dir)
    if step_dir is not None and "overwrite" in names:
        raw["overwrite"] = True  # the recipe owns its step directories: a re-run step starts over there
    if "progress" in names:
        raw.setdefault("progress", "log")
    for key in getattr(task.config, "WRITES_INTO", ()):
        if allowed and isinstance(raw.get(key), str) and raw[key] and not _inside(raw[key], allowed):
            raise SlimlabError(f"{where}: '{key}: {raw[key]}' is outside the recipe's --out {allowed[0]} "
                               "(a recipe writes only there, or into a path given on the command line)")
    return task, from_dict(task.config, raw, where)


def _inside(path: str, roots: tuple[Path, ...]) -> bool:
    p = Path(path).expanduser().resolve()
    return any(p == r or r in p.parents for r in (Path(r).expanduser().resolve() for r in roots))


# a step's name becomes a directory under --out: a plain name, never a path
_STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_recipe(recipe: dict, budget: str | None = None, overrides: dict | None = None,
                 out: str | Path | None = None, data_present: bool = False) -> list[str]:
    """Validate every step's options against its task's config, and that its inputs exist, without running
    anything; returns the step names."""
    out = Path(out or Path("runs") / str(recipe["name"]))
    env = _env(recipe, out, budget, overrides)
    names = []
    for step in recipe["steps"]:
        name, kind = _name_kind(step)
        opts = _subst(copy.deepcopy(step.get("with") or {}), env)
        env[name] = str(Path(env["out"]) / name)
        where = f"recipe {recipe['name']}, step {name}"
        _, cfg = _step_config(kind, opts, where, allowed=_allowed(env["out"], overrides))
        check_inputs(cfg, where, out, data_present)
        names.append(name)
    return names


# config fields that name an input (a file, a run directory, a data set, a zoo model), and their kinds
_INPUTS = {"data": "data", "checkpoint": "file", "init": "file", "run": "file", "runs": "file",
           "candidates": "file", "labels_from": "file", "profiles": "file", "exported": "file"}


def check_inputs(cfg: Any, where: str, out: Path, data_present: bool = False) -> None:
    """One line naming the step when an input it reads does not exist. Paths under the recipe's ``out`` are made by
    earlier steps, so only their place is checked; ``zoo:`` names must be in the zoo, and ``imagefolder:`` paths
    must be directories (named data sets such as cifar10 are found or downloaded when the step runs)."""
    from slimlab import zoo

    for key, kind in _INPUTS.items():
        values = getattr(cfg, key, None)
        for v in values if isinstance(values, list) else [values]:
            if not isinstance(v, str) or not v or v == "best":
                continue
            if kind == "data":
                _check_data(v, cfg, where, data_present)
                continue
            if v.startswith(zoo.PREFIX):
                zoo.resolve(v)
                continue
            p = Path(v).expanduser()
            if _inside(v, (out,)) or v.startswith("${"):  # made by an earlier step
                continue
            if not p.exists():
                raise SlimlabError(f"{where}: {key} not found: {v}")


# torchvision's folder of each named data set under --root (what it reads without --download)
_TV_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _check_data(v: str, cfg: Any, where: str, named: bool) -> None:
    """An image folder that exists; with ``named`` (``run --check``), a named data set already under its --root
    too, unless the step downloads it."""
    if v.startswith("imagefolder:") and not Path(v.split(":", 1)[1]).expanduser().is_dir():
        raise SlimlabError(f"{where}: data folder not found: {v.split(':', 1)[1]}")
    if not getattr(cfg, "root", "") and not hasattr(cfg, "download"):  # prune: the checkpoint's root, unknown here
        return
    root = Path(str(getattr(cfg, "root", "") or "~/.cache/slimlab/data")).expanduser()
    if named and v in _TV_FOLDERS and not getattr(cfg, "download", False) and not (root / _TV_FOLDERS[v]).is_dir():
        raise SlimlabError(f"{where}: {v} is not under {root} and the step does not download it: set its root, "
                           "its download, or data: imagefolder:PATH")


def _name_kind(step: Any) -> tuple[str, str]:
    if not isinstance(step, dict) or not step.get("name") or not step.get("kind"):
        raise SlimlabError(f"recipe step {str(step)[:80]}: needs a mapping with a name and a kind among "
                           f"{', '.join(sorted([*TASKS, *KINDS]))}")
    name = step["name"]
    if not isinstance(name, str) or not _STEP_NAME.match(name) or ".." in name:
        raise SlimlabError(f"recipe step name {name!r}: use a plain name (letters, digits, '_', '-', '.'), "
                           "not a path: it becomes a directory under --out")
    if not isinstance(step["kind"], str):
        raise SlimlabError(f"recipe step {name}: 'kind' must be a string")
    task_for_kind(step["kind"])
    if not isinstance(step.get("with") or {}, dict):
        raise SlimlabError(f"recipe step {name}: 'with' must be a mapping of options, got "
                           f"{type(step['with']).__name__}")
    return name, step["kind"]


def run_recipe(recipe: dict, out: str | Path, budget: str | None = None, overrides: dict | None = None,
               log=print) -> dict[str, dict]:
    """Run (or continue) a recipe into ``out``; returns {step name: result summary}.

    The recipe holds ``out``'s lock while it runs: two runs of a recipe never write into one directory."""
    out = Path(out).expanduser()
    with lock(out):
        return _run_recipe(recipe, out, budget, overrides, log)


def _marker(path: Path) -> dict:
    """A step's marker (step.json, step-started.json); a missing, torn or foreign one reads as none: the step
    runs (again)."""
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return got if isinstance(got, dict) else {}


def _run_recipe(recipe: dict, out: Path, budget: str | None, overrides: dict | None, log) -> dict[str, dict]:
    env = _env(recipe, out, budget, overrides)
    results: dict[str, dict] = {}
    digests: dict[str, str] = {}
    for step in recipe["steps"]:
        name, kind = _name_kind(step)
        if name in results:
            raise SlimlabError(f"recipe: two steps are named '{name}'")
        step_dir = out / name
        opts = _subst(copy.deepcopy(step.get("with") or {}), env)
        env[name] = str(step_dir)
        # a step that reads an earlier step's directory is stale when that step changed
        upstream = {n: d for n, d in digests.items()
                    if any(v == env[n] or v.startswith(env[n] + "/") for v in _strings(opts))}
        digest = digests[name] = _hash({"kind": kind, "with": opts, "upstream": upstream})
        marker = step_dir / "step.json"
        if _marker(marker).get("hash") == digest:
            log(f"[{name}] done already, skipped")
            results[name] = _marker(marker).get("result", {})
            continue
        log(f"[{name}] {kind} ...")
        t0 = time.time()
        # a run left in step_dir may be continued only if it was started by this very step (same hash)
        started = step_dir / "step-started.json"
        refuse_foreign_step_dir(step_dir)
        resumable = _marker(started).get("hash") == digest
        atomic_write_json(started, {"hash": digest})
        results[name] = _run_step(kind, opts, step_dir, resumable, _allowed(out, overrides))
        atomic_write_json(marker, {"kind": kind, "hash": digest, "with": opts, "seconds": time.time() - t0,
                                   "result": results[name]})
    return results


def refuse_foreign_step_dir(step_dir: Path) -> None:
    """A step replaces its directory only when a recipe step wrote it (its step-started.json or step.json) or it
    is empty: a run of the user's that happens to sit at OUT/<step name> is never overwritten."""
    own = (step_dir / "step-started.json").is_file() or (step_dir / "step.json").is_file()
    if step_dir.is_dir() and not own and any(step_dir.iterdir()):
        raise SlimlabError(f"{step_dir} holds files no recipe step wrote (an earlier run?): give another --out, or "
                           "move them away")
    if step_dir.exists() and not step_dir.is_dir():
        raise SlimlabError(f"{step_dir} is a file, not a step directory: give another --out")


def _compact(s: dict) -> dict:
    keys = ("test_acc", "best_val_acc", "params", "macs", "wall_s", "out", "method", "ratio", "precision", "recall",
            "flagged", "flagged_fraction", "true_flips", "source", "csv", "chosen", "path", "from", "bytes",
            "max_abs_diff", "models", "why")
    return {k: s[k] for k in keys if k in s and not isinstance(s[k], list)}


def _strings(o: Any):
    if isinstance(o, str):
        yield o
    elif isinstance(o, dict):
        for v in o.values():
            yield from _strings(v)
    elif isinstance(o, (list, tuple)):
        for v in o:
            yield from _strings(v)


def _allowed(out: str | Path, overrides: dict | None) -> tuple[Path, ...]:
    """Where a recipe may write: its --out, and paths the user gave on the command line (``--set VAR=PATH``)."""
    return (Path(out), *(Path(v) for v in (overrides or {}).values() if isinstance(v, str) and v))


def _run_step(kind: str, opts: dict, step_dir: Path, resumable: bool = False, allowed: tuple[Path, ...] = ()) -> dict:
    task, cfg = _step_config(kind, opts, f"recipe step {step_dir.name}", step_dir, allowed)
    if task.as_train_config is None:
        if resumable and task.resume is not None and _same_step(step_dir, cfg, task.resume_may_change):
            return _compact(task.resume(step_dir))  # a prune killed mid-way: its layers done are kept
        return _compact(task.run(cfg))
    tcfg = task.as_train_config(cfg)
    tcfg.out = str(step_dir)
    last = step_dir / "last.pt"
    if resumable and last.is_file() and (step_dir / "config.yaml").is_file():
        if config_difference(load_yaml(step_dir / "config.yaml"), to_dict(tcfg)) is None:
            ck = load_checkpoint(last)
            if ck["epoch"] <= tcfg.epochs:  # at epochs: trained, killed before step.json; no retraining
                return _compact(train(tcfg, resume=ck))
    return _compact(train(tcfg))


def _same_step(step_dir: Path, cfg: Any, may_change: tuple[str, ...]) -> bool:
    """Whether ``step_dir`` holds this step's run, killed before its summary (the same options, but where it writes
    and what a resume may change)."""
    if not (step_dir / "config.yaml").is_file() or (step_dir / "summary.json").is_file():
        return False
    return bool(config_run_id(step_dir / "config.yaml")) and not options_changed(step_dir, cfg, may_change)


@dataclass
class RunConfig:
    POSITIONAL = ("recipe",)
    APPEND = ("set",)
    CONFIG_FLAGS = False  # --set here sets recipe variables, not config keys

    recipe: str = ""  # a recipe YAML, or a shipped recipe's name (fast_cifar10, thinet_resnet56_cifar10, ...)
    budget: str = ""  # a budget of the recipe, e.g. small
    out: str = ""  # default runs/<recipe name>[-<budget>]
    set: list = field(default_factory=list)  # VAR=VALUE: override a recipe variable
    check: bool = False  # validate every step's options; run nothing


Config = RunConfig


def run(cfg: RunConfig) -> dict:
    """``slimlab run``: validate (``check``) or run a recipe; returns {"steps": {name: result}} or the names."""
    recipe = load_recipe(cfg.recipe)
    overrides = parse_set(cfg.set)
    if cfg.check:
        steps = check_recipe(recipe, cfg.budget or None, overrides, cfg.out or None, data_present=True)
        return {"name": recipe["name"], "valid_steps": steps}
    if not cfg.out and (not _STEP_NAME.fullmatch(str(recipe["name"])) or ".." in str(recipe["name"])):
        raise SlimlabError(f"recipe name {str(recipe['name'])[:60]!r} is not a plain name, so it cannot be the default "
                           "output directory runs/NAME: give --out")
    out = cfg.out or f"runs/{recipe['name']}" + (f"-{cfg.budget}" if cfg.budget else "")
    return {"name": recipe["name"], "steps": run_recipe(recipe, out, cfg.budget or None, overrides)}
