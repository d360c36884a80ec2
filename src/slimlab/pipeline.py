"""Recipes: pipelines of steps whose outputs feed the next (``slimlab run recipe.yaml``).

A recipe is YAML::

    name: thinet-resnet56-cifar10
    vars: {data: "imagefolder:../shared/data/cifar10-jpg", epochs: 160}
    budgets:                       # --budget small overrides vars for a CPU-sized run
      small: {epochs: 3, train_subset: 2000}
    steps:
      - {name: train, kind: train, with: {data: "${data}", model: resnet56, epochs: "${epochs}"}}
      - {name: thinet, kind: prune, with: {checkpoint: "${train}/best.pt", method: thinet, ratio: 0.5}}

``${var}`` is a variable and ``${step}`` the output directory of an earlier step (a string made only
of one reference keeps the variable's type). Kinds: train, pretrain, probe, prune, labels, profile,
export, scale_search, report. Each step writes into ``OUT/<step name>``; when it succeeds a
``step.json`` marker (with a hash of the step's resolved options) is written atomically. Re-running
skips every step whose marker matches, and a training step killed mid-way resumes from ``last.pt``,
so a recipe killed at any point continues where it stopped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

from slimlab.errors import SlimlabError

KINDS = ("train", "pretrain", "probe", "prune", "labels", "profile", "export", "scale_search", "report")
_REF = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def load_recipe(path: str | Path) -> dict:
    from slimlab.config import load_yaml

    r = load_yaml(path)
    if not isinstance(r.get("steps"), list) or not r["steps"]:
        raise SlimlabError(f"{path}: a recipe needs a non-empty 'steps' list")
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


def check_recipe(recipe: dict, budget: str | None = None, overrides: dict | None = None) -> list[str]:
    """Validate every step's options against its config without running anything; returns the step names."""
    from slimlab.config import TrainConfig, from_dict
    from slimlab.prune import PruneConfig

    env = _env(recipe, Path("runs") / recipe["name"], budget, overrides)
    names = []
    for step in recipe["steps"]:
        name, kind = step.get("name"), step.get("kind")
        if not name or kind not in KINDS:
            raise SlimlabError(f"recipe step {step}: needs a name and a kind among {', '.join(KINDS)}")
        opts = _subst(copy.deepcopy(step.get("with") or {}), env)
        env[name] = str(Path(env["out"]) / name)
        where = f"recipe {recipe['name']}, step {name}"
        if kind in ("train", "pretrain"):
            from_dict(TrainConfig, {k: v for k, v in opts.items()}, where)
        elif kind == "probe":
            from_dict(TrainConfig, {k: v for k, v in opts.items() if k not in ("checkpoint", "block", "head")}, where)
        elif kind == "prune":
            from_dict(PruneConfig, dict(opts), where)
        names.append(name)
    return names


def run_recipe(recipe: dict, out: str | Path, budget: str | None = None, overrides: dict | None = None,
               log=print) -> dict[str, dict]:
    """Run (or continue) a recipe into ``out``; returns {step name: result summary}."""
    from slimlab.engine import atomic_write_json

    out = Path(out)
    env = _env(recipe, out, budget, overrides)
    results: dict[str, dict] = {}
    digests: dict[str, str] = {}
    names = set()
    for step in recipe["steps"]:
        name, kind = step.get("name"), step.get("kind")
        if not name or kind not in KINDS:
            raise SlimlabError(f"recipe step {step}: needs a name and a kind among {', '.join(KINDS)}")
        if name in names:
            raise SlimlabError(f"recipe: two steps are named '{name}'")
        names.add(name)
        step_dir = out / name
        opts = _subst(copy.deepcopy(step.get("with") or {}), env)
        env[name] = str(step_dir)
        marker = step_dir / "step.json"
        # a step that reads an earlier step's directory is stale when that step changed
        paths = list(_strings(opts))
        upstream = {n: d for n, d in digests.items()
                    if any(v == env[n] or v.startswith(env[n] + "/") for v in paths)}
        digest = _hash({"kind": kind, "with": opts, "upstream": upstream})
        digests[name] = digest
        if marker.is_file():
            m = json.loads(marker.read_text())
            if m.get("hash") == digest:
                log(f"[{name}] done already, skipped")
                results[name] = m.get("result", {})
                continue
        log(f"[{name}] {kind} ...")
        t0 = time.time()
        # a run left in step_dir may be continued only if it was started by this very step (same hash)
        started = step_dir / "step-started.json"
        resumable = started.is_file() and json.loads(started.read_text()).get("hash") == digest
        step_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(started, {"hash": digest})
        result = _run_step(kind, opts, step_dir, resumable)
        atomic_write_json(marker, {"kind": kind, "hash": digest, "with": opts, "seconds": time.time() - t0,
                                   "result": result})
        results[name] = result
    return results


def _compact(s: dict) -> dict:
    keys = ("test_acc", "best_val_acc", "params", "macs", "wall_s", "out", "method", "ratio", "precision", "recall",
            "flagged", "chosen", "path")
    return {k: s[k] for k in keys if k in s}


def _strings(o: Any):
    if isinstance(o, str):
        yield o
    elif isinstance(o, dict):
        for v in o.values():
            yield from _strings(v)
    elif isinstance(o, (list, tuple)):
        for v in o:
            yield from _strings(v)


def _run_step(kind: str, opts: dict, step_dir: Path, resumable: bool = False) -> dict:
    from slimlab import api
    from slimlab.config import TrainConfig, from_dict

    if kind in ("train", "pretrain", "probe"):
        raw = dict(opts)
        if kind == "pretrain":
            from slimlab.ssl.rotnet import ROTNET_DEFAULTS

            raw = {**ROTNET_DEFAULTS, **raw}
        if kind == "probe":
            from slimlab.engine import load_checkpoint

            ck = load_checkpoint(raw.pop("checkpoint"))
            raw = {"model": "probe", "init": ck["path"], "data": ck.get("config", {}).get("data"),
                   "model_kwargs": {"trunk": ck["model_name"], "trunk_kwargs": ck.get("model_kwargs", {}),
                                    "trunk_classes": ck["num_classes"], "block": raw.pop("block", 2),
                                    "head": raw.pop("head", "linear")}, **raw}
        raw["out"] = str(step_dir)
        raw.setdefault("progress", "log")
        cfg = from_dict(TrainConfig, raw, f"recipe step {step_dir.name}")
        last = step_dir / "last.pt"
        if resumable and last.is_file() and (step_dir / "config.yaml").is_file():
            from slimlab.config import load_yaml

            if load_yaml(step_dir / "config.yaml") == {**_asdict(cfg)}:
                from slimlab.engine import load_checkpoint

                ck = load_checkpoint(last)
                if ck["epoch"] <= cfg.epochs:  # at epochs: trained, killed before step.json; no retraining
                    return _compact(api.train(cfg, resume=ck))
        return _compact(api.train(cfg))
    if kind == "prune":
        from slimlab.prune import PruneConfig

        raw = {**opts, "out": str(step_dir)}
        raw.setdefault("progress", "log")
        return _compact(api.prune(from_dict(PruneConfig, raw, f"recipe step {step_dir.name}")))
    if kind == "labels":
        from slimlab.noise.label_issues import find_label_issues

        run = Path(opts["run"])
        r = find_label_issues(run, opts.get("folds", 3), opts.get("cv_epochs"), opts.get("grid", 24))
        step_dir.mkdir(parents=True, exist_ok=True)
        return _compact(r)
    if kind == "profile":
        return profile_runs(opts.get("runs", []), step_dir, onnx=opts.get("onnx", True))
    if kind == "export":
        from slimlab.engine import load_checkpoint
        from slimlab.export import export_onnx, export_torchscript
        from slimlab.models.io import model_from_checkpoint

        run = opts["run"]
        if run == "best":  # the most accurate of the given candidate runs
            run = best_run(opts.get("candidates", []))
        ck = load_checkpoint(run)
        model = model_from_checkpoint(ck)
        size = int(ck.get("data", {}).get("image_size", 32))
        fmt = opts.get("format", "onnx")
        path = step_dir / ("model.onnx" if fmt == "onnx" else "model.ts.pt")
        r = export_onnx(model, path, size) if fmt == "onnx" else export_torchscript(model, path, size)
        r["from"] = str(run)
        return r
    if kind == "scale_search":
        from slimlab.scaling.search import grid_search

        return {"chosen": grid_search(out=step_dir, **opts)["chosen"]}
    if kind == "report":
        from slimlab.report import build_report

        path = build_report(opts.get("runs", []), step_dir / opts.get("file", "report.html"),
                            fmt=opts.get("format", "html"), title=opts.get("title", "slimlab report"))
        return {"path": str(path)}
    raise SlimlabError(f"unknown step kind {kind}")


def _asdict(cfg) -> dict:
    from slimlab.config import to_dict

    return to_dict(cfg)


def best_run(runs: list[str]) -> str:
    best, best_acc = None, -1.0
    for r in runs:
        s = Path(r) / "summary.json"
        if s.is_file():
            acc = json.loads(s.read_text()).get("test_acc") or 0.0
            if acc > best_acc:
                best, best_acc = r, acc
    if best is None:
        raise SlimlabError("export: none of the candidate runs has a summary.json")
    return best


def profile_runs(runs: list[str], out: Path, onnx: bool = True, iters: int = 20) -> dict:
    """Params, MACs, PyTorch and ONNX Runtime CPU latency (batch 1) of every run's model -> profile.json."""
    import torch

    from slimlab.engine import atomic_write_json, load_checkpoint
    from slimlab.models.io import model_from_checkpoint
    from slimlab.profile import count_macs, count_params, measure_latency

    rows = {}
    for r in runs:
        ck = load_checkpoint(r)
        model = model_from_checkpoint(ck).eval()
        size = int(ck.get("data", {}).get("image_size", 32))
        row = {"params": count_params(model), "macs": count_macs(model, size),
               "torch_ms": measure_latency(model, size, 1, warmup=5, iters=iters)["median_ms"],
               "threads": torch.get_num_threads()}
        if onnx:
            from slimlab.export import onnx_latency

            row["onnx_ms"] = onnx_latency(model, size, 1, iters=iters)["median_ms"]
        rows[str(r)] = row
        s = Path(r) / "summary.json"
        if s.is_file():  # latency travels with the run, for the report
            summ = json.loads(s.read_text())
            summ["latency_ms"] = {"torch_b1": row["torch_ms"], **({"onnx_b1": row["onnx_ms"]} if onnx else {})}
            atomic_write_json(s, summ)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "profile.json", rows)
    return {"models": len(rows)}
