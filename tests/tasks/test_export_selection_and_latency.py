"""Export chooses as a user would (the smallest model within a tolerance of the best), and latency is measured
in timed blocks with its spread, re-measured when unstable."""

import json
import time

import pytest

from slimlab.errors import SlimlabError
from slimlab.profile.latency import summarize, timed
from slimlab.tasks.export import choose_run
from slimlab.tasks.report import pareto


def _run(tmp_path, name, **summary):
    d = tmp_path / name
    d.mkdir()
    (d / "summary.json").write_text(json.dumps(summary))
    return str(d)


def test_export_takes_the_pruned_model_that_ties_within_the_tolerance(tmp_path):
    big = _run(tmp_path, "pencil", test_acc=0.90, best_val_acc=0.880, macs=40e6)
    small = _run(tmp_path, "thinet", test_acc=0.91, best_val_acc=0.877, macs=20e6)
    worse = _run(tmp_path, "weight_sum", test_acc=0.95, best_val_acc=0.850, macs=10e6)
    pick, why = choose_run([big, small, worse], "smallest", 0.5)
    assert pick == small  # 0.3 points below the best validation accuracy, half the MACs; weight sum is 3 below
    assert "2 of 3 candidates within 0.5 points of the best validation accuracy (88.00%)" in why
    assert "20.0M MACs at 87.70%" in why
    assert choose_run([big, small, worse], "accurate", 0.5)[0] == big
    assert choose_run([big, small, worse], "smallest", 5.0)[0] == worse
    assert choose_run([big, small], "fastest", 0.5, latency={big: 3.0, small: 1.0}.get)[0] == small


def test_export_falls_back_to_test_accuracy_and_says_so(tmp_path):
    a = _run(tmp_path, "a", test_acc=0.80, macs=5e6)
    b = _run(tmp_path, "b", test_acc=0.90, best_val_acc=0.9, macs=9e6)
    pick, why = choose_run([a, b], "smallest", 0.5)
    assert pick == b and "test accuracy" in why
    with pytest.raises(SlimlabError, match="summary.json"):
        choose_run([str(tmp_path / "none")])


def test_pareto_front_by_hand():
    pts = [(1.0, 80.0), (2.0, 85.0), (2.5, 84.0), (3.0, 85.0), (0.5, 70.0)]
    assert pareto(pts) == [4, 0, 1]  # (2.5, 84) and (3, 85) are dominated by (2, 85)


def test_summarize_quantiles_by_hand():
    r = summarize([float(v) for v in range(1, 11)])
    assert r["median_ms"] == 5.5 and r["p10_ms"] == pytest.approx(1.1) and r["p90_ms"] == pytest.approx(9.9)
    assert r["spread"] == pytest.approx((9.9 - 1.1) / 5.5)


def test_timed_measures_a_known_duration_and_flags_an_unstable_one():
    r = timed(lambda: time.sleep(0.002), min_blocks=5, min_s=0.1, block_s=0.02)
    assert 1.9 <= r["median_ms"] <= 3.0 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] and r["stable"]
    calls = [0]

    def slower_each_time():
        calls[0] += 1
        time.sleep(0.0001 * calls[0])

    r = timed(slower_each_time, min_blocks=5, min_s=0.05, block_s=0.005, max_spread=0.05, attempts=2)
    assert r["attempts"] == 2 and not r["stable"] and r["spread"] > 0.05


def test_the_export_record_says_how_to_feed_the_model_and_following_it_reproduces_the_accuracy(tmp_path):
    """A deployer reads model.onnx.json (shape, preprocessing, mean/std, classes), feeds raw test pixels to ONNX
    Runtime that way, and gets the accuracy slimlab evaluate reports."""
    import numpy as np
    import onnxruntime as ort

    from slimlab import api
    from slimlab import data as D
    from slimlab.config import TrainConfig

    api.train(TrainConfig(data="digits", model="convnet", model_kwargs={"width": 8}, image_size=16, epochs=2,
                          train_subset=300, progress="none", out=str(tmp_path / "t")))
    api.export(api.ExportConfig(run=str(tmp_path / "t"), out=str(tmp_path / "m.onnx")))
    rec = json.loads((tmp_path / "m.onnx.json").read_text())["input"]
    assert rec["shape"] == ["batch", 3, 16, 16] and rec["classes"] == [str(i) for i in range(10)]
    test = D.build("digits", image_size=rec["shape"][-1]).test
    mean, std = np.array(rec["mean"])[None, :, None, None], np.array(rec["std"])[None, :, None, None]
    x = ((test.images.numpy() / 255.0 - mean) / std).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    pred = np.concatenate([sess.run(None, {name: x[i:i + 1]})[0].argmax(1) for i in range(len(x))])
    acc = float((pred == test.targets.numpy()).mean())
    assert abs(acc - api.evaluate(api.EvaluateConfig(checkpoint=str(tmp_path / "t")))["test_acc"]) < 1e-9


def test_candidates_are_given_as_the_readme_shows_or_comma_separated(tmp_path, monkeypatch):
    """`export best --candidates runs/a runs/b` (the README) was "unrecognized arguments"."""
    from slimlab.cli.main import build_parser
    from slimlab.tasks import export

    a = _run(tmp_path, "a", test_acc=0.90, best_val_acc=0.88, macs=40e6)
    b = _run(tmp_path, "b", test_acc=0.90, best_val_acc=0.88, macs=20e6)
    c = _run(tmp_path, "c", test_acc=0.90, best_val_acc=0.88, macs=30e6)
    seen = []
    monkeypatch.setattr(export, "choose_run", lambda runs, *args, **kw: seen.append(runs) or (None, ""))
    monkeypatch.setattr(export, "export", lambda *args, **kw: {}, raising=False)
    for argv in (["--candidates", a, b, c], ["--candidates", f"{a},{b},{c}"]):
        args = build_parser().parse_args(["export", "best", *argv])
        assert args.candidates in ([a, b, c], [f"{a},{b},{c}"])
        cfg = export.ExportConfig(run="best", candidates=args.candidates)
        try:
            export.run(cfg)
        except Exception:  # noqa: BLE001 - only the candidates handed to choose_run matter here
            pass
    assert seen == [[a, b, c], [a, b, c]]
