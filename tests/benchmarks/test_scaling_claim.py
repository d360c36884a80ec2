"""scaling_claim.py compares arms at equal measured MACs: the depth arm first (whole blocks), every other arm
within 3% of it, each arm moving only its own dimension; an unmatched plan is refused before any training."""


import pytest


@pytest.fixture(scope="module")
def bench(load_bench):
    return load_bench("scaling_claim")


@pytest.mark.parametrize("target", [2.0, 4.0])  # the benchmark's default targets
def test_every_arm_meets_the_depth_arms_measured_macs_within_3_percent(bench, target):
    base, plan = bench.build_plan(bench.parse_args(["--dry"]))  # the benchmark's default base
    m0 = bench.macs_of(base, 32)
    arms = bench.variants(base, target)
    assert set(arms) == {"depth", "width", "resolution", "compound"}
    depth = bench.macs_of(*arms["depth"])
    assert 0.9 * target < depth / m0 < 1.1 * target  # whole blocks: near the nominal target (2.18x, 4.02x)
    for way, (kw, res) in arms.items():
        assert abs(bench.macs_of(kw, res) / depth - 1) <= bench.MATCH, way
    # each single-dimension arm moves only its own dimension
    assert arms["depth"][1] == 32 and arms["depth"][0]["width_mult"] == base["width_mult"]
    assert arms["width"][1] == 32 and arms["width"][0]["depth_mult"] == base["depth_mult"]
    assert arms["resolution"][0] == base and arms["resolution"][1] > 32
    assert bench.unmatched({"base": {"x1": (base, 32)}, **{w: {"x": v} for w, v in arms.items()}}) == []
    kw, res = arms["compound"]  # every dimension grows
    assert kw["width_mult"] >= base["width_mult"] and kw["depth_mult"] > base["depth_mult"] and res > 32


def test_a_plan_off_by_more_than_3_percent_is_named(bench):
    base = {"width_mult": 0.5, "depth_mult": 0.5, "cifar_stem": True, "dropout": 0.0, "bn_momentum": 0.1}
    plan = {"depth": {"x2": ({**base, "depth_mult": 1.0}, 32)}, "resolution": {"x2": (base, 36)}}
    off = bench.unmatched(plan)
    assert len(off) == 1 and off[0].startswith("resolution x2: ")
    shrunk = {"base": {"x1": (base, 32)}, "depth": {"x2": ({**base, "depth_mult": 1.0}, 32)},
              "compound": {"x2": ({**base, "width_mult": 0.45, "depth_mult": 0.75}, 36)}}
    assert any("compound x2" in o and "shrinks a dimension" in o for o in bench.unmatched(shrunk))


def test_the_compound_arms_phi_is_read_back_from_its_depth(bench):
    base = {"width_mult": 0.5, "depth_mult": 0.5, "cifar_stem": True, "dropout": 0.0, "bn_momentum": 0.1}
    s = bench.scale(bench.BASE, 1.7, *bench.PAPER_POINT, base_resolution=32, base_kwargs=base)
    assert bench._phi({**base, **s.model_kwargs}, base) == pytest.approx(1.7)


def test_verdicts_hold_only_beyond_the_seed_spread_and_say_what_is_left(bench):
    def arm(accs, mismatch):
        return {"x2": {"test_acc": sum(accs) / len(accs), "test_accs": accs, "mismatch": mismatch, "macs_ratio": 2.18}}

    data = {"depth": arm([0.80, 0.82], 0.0), "width": arm([0.81, 0.81], 0.02), "resolution": arm([0.70, 0.71], -0.025),
            "compound": arm([0.84, 0.85], 0.01)}
    line, overall = bench.verdicts(data, "2")
    assert "compound 84.50%, the best other arm depth 81.00% (+3.50 points" in line and "**holds**" in line
    assert "within 2.5% of the depth arm" in line and "spread up to 2.00 points" in line
    assert overall == "- Over the targets: **holds** (x2: holds)."
    data["compound"] = arm([0.82, 0.83], 0.01)  # +1.5 points, within the 2-point seed spread
    assert "**not shown (within the seed spread)**" in bench.verdicts(data, "2")[0]
    data["width"] = arm([0.86, 0.84], 0.02)
    assert "best other arm width 85.00% (-2.50 points" in bench.verdicts(data, "2")[0]
    assert "**does not hold**" in bench.verdicts(data, "2")[0]
    data["width"]["x2"] = {"left": [1], "mismatch": 0.02}  # an arm not finished: not shown yet, and which
    assert bench.verdicts(data, "2")[0] == "- x2: not shown yet (left: width (not finished: seed 1))."
    data["width"]["x2"] = {"left": [], "diverged": {0: "training diverged"}, "mismatch": 0.02}
    assert "width (diverged: seed 0)" in bench.verdicts(data, "2")[0]


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
    monkeypatch.setattr(bench, "cached_train", lambda d, **kw: pytest.fail("--partial must not train"))
    depth = bench.run_point(a, plan, base_kw, "depth", "x2", None)
    width = bench.run_point(a, plan, base_kw, "width", "x2", None)
    assert depth["test_accs"] == [0.5, 0.6] and depth["left"] == []
    assert "test_acc" not in width and width["left"] == [1]
    arms = {"depth x2": plan["depth"]["x2"]}
    assert bench.arms_latency(tmp_path / "latency.json", arms, again=False, time_now=False) == {}  # never timed


def test_a_seed_another_process_holds_is_left_to_it_and_a_diverged_one_is_not_retried(bench, load_bench, tmp_path,
                                                                                        monkeypatch):
    from slimlab.errors import SlimlabError

    a = bench.parse_args(["--targets", "2", "--seeds", "0,1", "--out", str(tmp_path)])
    base_kw, plan = bench.build_plan(a)
    calls = []

    def train(d, **kw):
        calls.append(d.name)
        raise SlimlabError("training diverged in epoch 3: its loss is over 10x the first epoch's")

    monkeypatch.setattr(bench, "cached_train", train)
    with load_bench("_util").claimed(tmp_path / "width-x2-s1"):  # the other worker trains seed 1
        e = bench.run_point(a, plan, base_kw, "width", "x2", None)
    assert calls == ["width-x2-s0"] and e["left"] == [1] and "diverged in epoch 3" in e["diverged"][0]
    assert "test_acc" not in e
    monkeypatch.setattr(bench, "cached_train", lambda d, **kw: calls.append(d.name) or {"test_acc": 0.6})
    e = bench.run_point(a, plan, base_kw, "width", "x2", None)
    assert calls[1:] == ["width-x2-s1"] and 0 in e["diverged"] and e["left"] == []  # seed 0 recorded, not retried


def test_latency_times_every_arm_once_interleaved_and_is_reused_for_the_same_arms(bench, tmp_path, monkeypatch):
    import slimlab.profile.latency as L

    timed = []
    real = L.timed_many
    monkeypatch.setattr(L, "timed_many", lambda fns, **kw: timed.append(sorted(fns)) or real(fns, min_blocks=2,
                                                                                                attempts=1, **kw))
    base = {"width_mult": 0.25, "depth_mult": 0.25, "cifar_stem": True}
    arms = {"base x1": (base, 16), "width x2": ({**base, "width_mult": 0.35}, 16)}
    path = tmp_path / "latency.json"
    got = bench.arms_latency(path, arms, again=False, time_now=True)
    assert timed == [["base x1", "width x2"]] and got["width x2"]["p10_ms"] <= got["width x2"]["median_ms"]
    assert bench.arms_latency(path, arms, again=False, time_now=True) == got and len(timed) == 1  # reused
    bench.arms_latency(path, {**arms, "width x2": ({**base, "width_mult": 0.4}, 16)}, again=False, time_now=True)
    assert len(timed) == 2  # another arm than the file timed: timed again


def test_the_header_names_the_cpu_most_seeds_trained_on_and_lists_cells_that_differ(bench, tmp_path):
    """The campaign spans machines (an Intel Xeon, then an AMD EPYC): the table says which cells ran where."""
    import json

    for name, cpu in [("depth-x2-s0", "Xeon"), ("width-x2-s0", "EPYC"), ("width-x2-s1", "EPYC"), ("base-x1-s0", None)]:
        (tmp_path / name).mkdir()
        machine = {"model": cpu, "threads": 1, "train_precision": "bf16 autocast"} if cpu else None
        (tmp_path / name / "summary.json").write_text(json.dumps({"test_acc": 0.5, "machine": machine}))
    m, note = bench.trained_on(str(tmp_path))
    assert m["cpu_model"] == "EPYC" and "Xeon, 1: depth-x2-s0" in note and "not recorded: base-x1-s0" in note
    assert bench.trained_on(str(tmp_path / "nothing")) == (None, "")
