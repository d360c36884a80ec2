"""A fuzz-style test of the files slimlab reads back: mutated checkpoints, summaries, recipes and the configs in
them (a fixed seed, a few hundred cases). Every case must end with exit 0, or exit 2 and one line
``slimlab: error: ...``; never a traceback, and never a changed file outside the output it was given."""

import copy
import hashlib
import json
import random
from pathlib import Path

import pytest
import torch
import yaml

from slimlab import api
from slimlab.cli.main import main
from slimlab.config import TrainConfig

POOL = [None, "", "abc", -1, 0, 3, 1e308, [], {}, True, "../../x", "a$b$c", "é\u202e", [1, "x"], {"a": {"b": []}},
        "zoo:../../x", "imagefolder:/nonexistent", 2**63]


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, list) and obj and not isinstance(obj[0], (int, float)):
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    yield path


def mutate(obj, rng: random.Random):
    """One random mutation: a value replaced by one of POOL, a key deleted, or the whole object replaced."""
    obj = copy.deepcopy(obj)
    paths = [p for p in _leaves(obj) if p]
    if not paths or rng.random() < 0.05:
        return rng.choice(POOL)
    path = rng.choice(paths)
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and rng.random() < 0.25:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(POOL))
    return obj


def _digest(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _cli(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


CODES: dict[str, list[int]] = {}


def _check(code: int, err: str, case: str) -> None:
    CODES.setdefault(case.rsplit(" ", 1)[0], []).append(code)
    assert "Traceback" not in err, case
    assert code in (0, 2), f"{case}: exit {code}: {err[-300:]}"
    if code == 2:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("slimlab: error: "), f"{case}: {err[-500:]}"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    run = root / "run"
    api.train(TrainConfig(data="fake", model="convnet", model_kwargs={"width": 4}, epochs=1, batch_size=64,
                          out=str(run), progress="none"))
    return root, run


def test_mutated_checkpoints(fixtures, capsys, tmp_path):
    root, run = fixtures
    ck = torch.load(run / "best.pt", weights_only=True)
    meta = {k: v for k, v in ck.items() if k not in ("state_dict", "optimizer")}
    before = _digest(root)
    rng = random.Random(0)
    for i in range(120):
        bad = dict(ck)
        if i % 4 == 3:  # the tensors: a shape, a dtype or a value
            sd = dict(ck["state_dict"])
            key = rng.choice(sorted(sd))
            t = sd[key]
            sd[key] = rng.choice([t.flatten(), t.to(torch.int64), torch.full_like(t.float(), float("nan")),
                                  torch.zeros(3, 3)])
            bad["state_dict"] = sd
        else:
            m = mutate(meta, rng)
            bad = {**m, "state_dict": ck["state_dict"]} if isinstance(m, dict) else m
        path = tmp_path / f"ck{i}.pt"
        torch.save(bad, path)
        code, err = _cli(capsys, ["evaluate", str(path), "--data", "fake", "--test-subset", "20"])
        _check(code, err, f"checkpoint case {i}")
    assert _digest(root) == before
    codes = CODES["checkpoint case"]
    assert codes.count(2) >= 30 and codes.count(0) >= 5  # the mutations reach both refusals and harmless changes


def test_mutated_summaries_choose_or_refuse(fixtures, capsys, tmp_path):
    root, run = fixtures
    summary = json.loads((run / "summary.json").read_text())
    rng = random.Random(1)
    for i in range(60):
        cands = []
        for j in range(2):
            d = tmp_path / f"c{i}-{j}"
            d.mkdir()
            for f in ("best.pt", "config.yaml"):
                (d / f).write_bytes((run / f).read_bytes())
            s = mutate(summary, rng) if j == 0 else summary
            (d / "summary.json").write_text(json.dumps(s) if rng.random() < 0.9 else "{not json")
            cands.append(str(d))
        before = {c: _digest(Path(c)) for c in cands}
        argv = ["export", "best", "--candidates", ",".join(cands), "--out", str(tmp_path / f"o{i}.onnx")]
        code, err = _cli(capsys, argv)
        _check(code, err, f"summary case {i}")
        assert {c: _digest(Path(c)) for c in cands} == before
    assert CODES["summary case"].count(2) >= 5 and CODES["summary case"].count(0) >= 20


def test_mutated_recipes_and_configs(fixtures, capsys, tmp_path):
    root, run = fixtures
    recipe = {"name": "fz", "vars": {"epochs": 1}, "budgets": {"small": {"epochs": 1}}, "steps": [
        {"name": "train", "kind": "train", "with": {"data": "fake", "model": "convnet", "model_kwargs": {"width": 4},
                                                    "epochs": "${epochs}", "lr": 0.1, "noise": "symmetric:0.2"}},
        {"name": "prune", "kind": "prune", "with": {"checkpoint": "${train}/best.pt", "method": "l1",
                                                    "keep_ratio": 0.5}},
        {"name": "eval", "kind": "evaluate", "with": {"checkpoint": str(run / "best.pt")}}]}
    rng = random.Random(2)
    before = _digest(root)
    for i in range(150):
        r = mutate(recipe, rng)
        text = yaml.safe_dump(r) if rng.random() < 0.95 else "a: &x [*x, *x]\n" + "[" * 200
        (tmp_path / f"r{i}.yaml").write_text(text)
        code, err = _cli(capsys, ["run", str(tmp_path / f"r{i}.yaml"), "--check", "--out", str(tmp_path / "out")])
        _check(code, err, f"recipe case {i}")
    assert _digest(root) == before
    assert CODES["recipe case"].count(2) >= 50 and CODES["recipe case"].count(0) >= 10
