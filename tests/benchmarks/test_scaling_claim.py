"""scaling_claim.py compares arms at equal measured MACs: the depth arm first (whole blocks), every other arm
within 3% of it, each arm moving only its own dimension; an unmatched plan is refused before any training."""


import pytest


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("scaling_claim")


@pytest.mark.parametrize("target", [2.0, 4.0])  # the benchmark's default targets
def test_every_arm_meets_the_depth_arms_measured_macs_within_3_percent(bench, target):
    base = {"width_mult": 0.5, "depth_mult": 0.5, "cifar_stem": True, "dropout": 0.0, "bn_momentum": 0.1}
    m0 = bench.macs_of(base, 32)
    arms = bench.variants(base, target)
    assert set(arms) == {"depth", "width", "resolution", "compound"}
    depth = bench.macs_of(*arms["depth"])
    assert 0.8 * target < depth / m0 < 1.5 * target  # whole blocks: near the nominal target, not at it
    for way, (kw, res) in arms.items():
        assert abs(bench.macs_of(kw, res) / depth - 1) <= bench.MATCH, way
    # each single-dimension arm moves only its own dimension
    assert arms["depth"][1] == 32 and arms["depth"][0]["width_mult"] == base["width_mult"]
    assert arms["width"][1] == 32 and arms["width"][0]["depth_mult"] == base["depth_mult"]
    assert arms["resolution"][0] == base and arms["resolution"][1] > 32
    assert bench.unmatched({"base": {"x1": (base, 32)}, **{w: {"x": v} for w, v in arms.items()}}) == []


def test_a_plan_off_by_more_than_3_percent_is_named(bench):
    base = {"width_mult": 0.5, "depth_mult": 0.5, "cifar_stem": True, "dropout": 0.0, "bn_momentum": 0.1}
    plan = {"depth": {"x2": ({**base, "depth_mult": 1.0}, 32)}, "resolution": {"x2": (base, 36)}}
    off = bench.unmatched(plan)
    assert len(off) == 1 and off[0].startswith("resolution x2: ")


def test_the_compound_arms_phi_is_read_back_from_its_depth(bench):
    base = {"width_mult": 0.5, "depth_mult": 0.5, "cifar_stem": True, "dropout": 0.0, "bn_momentum": 0.1}
    s = bench.scale(bench.BASE, 1.7, *bench.PAPER_POINT, base_resolution=32, base_kwargs=base)
    assert bench._phi({**base, **s.model_kwargs}, base) == pytest.approx(1.7)


def test_verdicts_name_the_best_arm_its_mismatch_and_the_seed_spread(bench):
    def arm(accs, mismatch):
        return {"x2": {"test_acc": sum(accs) / len(accs), "test_accs": accs, "mismatch": mismatch, "macs_ratio": 2.62}}

    data = {"depth": arm([0.80, 0.82], 0.0), "width": arm([0.81, 0.81], 0.02), "resolution": arm([0.70, 0.71], -0.025),
            "compound": arm([0.83, 0.84], 0.01)}
    (line,) = bench.verdicts(data, "2")
    assert "best compound (83.50%" in line and "**holds**" in line
    assert "within 2.5% of the depth arm" in line and "spread up to 2.00 points" in line
    data["width"] = arm([0.86, 0.84], 0.02)
    (line,) = bench.verdicts(data, "2")
    assert "best width (85.00%" in line and "**does not hold**" in line
    del data["width"]["x2"]["test_acc"]  # an arm not trained yet: no verdict
    assert bench.verdicts(data, "2") == []


def test_a_dry_plan_lists_every_arm_without_training(bench):
    a = bench.parse_args(["--dry", "--targets", "2"])
    base_kw, plan = bench.build_plan(a)
    e = bench.run_point(a, plan, base_kw, "compound", "x2", None)
    assert "test_acc" not in e and "latency_ms" not in e and abs(e["mismatch"]) <= 0.03
    assert set(plan) == {"base", "depth", "width", "resolution", "compound"}
    assert "runs x 5000 images x 15 epochs" in bench.dry_cost(a, {"compound": {"x2": e}})


def test_partial_reads_finished_arms_and_trains_or_times_nothing(bench, tmp_path, monkeypatch):
    import json

    a = bench.parse_args(["--partial", "--targets", "2", "--seeds", "0,1", "--out", str(tmp_path)])
    base_kw, plan = bench.build_plan(a)
    for seed in (0, 1):  # the depth arm finished over both seeds, the width arm over one
        (tmp_path / f"depth-x2-s{seed}").mkdir()
        (tmp_path / f"depth-x2-s{seed}" / "summary.json").write_text(json.dumps({"test_acc": 0.5 + seed / 10}))
    (tmp_path / "width-x2-s0").mkdir()
    (tmp_path / "width-x2-s0" / "summary.json").write_text(json.dumps({"test_acc": 0.7}))
    (tmp_path / "depth-x2-latency.json").write_text(json.dumps({"median_ms": 3.0}))
    monkeypatch.setattr(bench, "cached_train", lambda d, **kw: json.loads((d / "summary.json").read_text()))
    monkeypatch.setattr(bench, "measure_latency", lambda *a, **k: pytest.fail("--partial must not time"))
    depth = bench.run_point(a, plan, base_kw, "depth", "x2", None)
    width = bench.run_point(a, plan, base_kw, "width", "x2", None)
    assert depth["test_accs"] == [0.5, 0.6] and depth["latency_ms"] == 3.0
    assert "test_acc" not in width and "latency_ms" not in width
