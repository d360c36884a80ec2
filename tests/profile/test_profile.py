import torch
import torch.nn as nn
from pytest import approx
from torch.utils.flop_counter import FlopCounterMode

from slimlab.models import create_model
from slimlab.profile import count_macs, measure_latency, profile_model


def test_conv_macs_by_hand():
    # C_out * H_out * W_out * (C_in / groups) * k * k
    m = nn.Conv2d(8, 16, 3, stride=2, padding=1)
    assert count_macs(m, 32, in_chans=8) == 16 * 16 * 16 * 8 * 9


def test_depthwise_and_grouped_macs_by_hand():
    dw = nn.Conv2d(12, 12, 3, padding=1, groups=12)
    assert count_macs(dw, 10, in_chans=12) == 12 * 10 * 10 * 1 * 9
    gc = nn.Conv2d(12, 24, 1, groups=3)
    assert count_macs(gc, 10, in_chans=12) == 24 * 10 * 10 * 4


def test_linear_macs_by_hand():
    m = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    assert count_macs(m, 4) == 48 * 10


def test_macs_agree_with_torch_flop_counter():
    for name in ("resnet20", "mobilenet_v2", "vgg16"):
        m = create_model(name, 10).eval()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            m(torch.zeros(1, 3, 32, 32))
        assert fc.get_total_flops() == 2 * count_macs(m, 32), name


def test_latency_reports_median_and_threads():
    m = create_model("convnet", 10, width=8)
    r = measure_latency(m, 32, batch=2, warmup=1, iters=5, threads=1)
    assert r["threads"] == 1 and r["iters"] >= 5 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
    p = profile_model(m, 32, batches=(1, 4), iters=3)
    assert [x["batch"] for x in p["latency"]] == [1, 4] and p["params"] > 0


class FakeClock:
    """A clock that only moves when a 'model' runs: each call costs ``cost`` ms, twice as much during a slow
    spell of the machine (from ``slow_from`` to ``slow_to`` ms of fake time)."""

    def __init__(self, slow_from: float, slow_to: float):
        self.now, self.slow = 0.0, (slow_from, slow_to)

    def __call__(self) -> float:
        return self.now / 1000

    def model(self, cost: float):
        def run():
            self.now += cost * (2 if self.slow[0] <= self.now < self.slow[1] else 1)
        return run


def test_interleaved_timing_spreads_a_slow_spell_over_every_model(monkeypatch):
    """Two identical models: timed one after the other, a slow spell during the second makes it look 2x slower;
    timed interleaved (timed_many), both see the spell alike and their medians agree."""
    import slimlab.profile.latency as lat

    clock = FakeClock(slow_from=560, slow_to=10**9)  # the machine slows down once a is measured (~0.55 s)
    monkeypatch.setattr(lat.time, "perf_counter", clock)
    a = lat.timed(clock.model(1.0), warmup=0, min_blocks=10, min_s=0.5, attempts=1)
    b = lat.timed(clock.model(1.0), warmup=0, min_blocks=10, min_s=0.5, attempts=1)
    assert a["median_ms"] == approx(1.0) and b["median_ms"] == approx(2.0)  # the sequential comparison is fooled

    clock = FakeClock(slow_from=1200, slow_to=10**9)  # from round 8 of 20 (3 blocks of 50 ms a round)
    monkeypatch.setattr(lat.time, "perf_counter", clock)
    r = lat.timed_many({"a": clock.model(1.0), "b": clock.model(1.0), "half": clock.model(0.5)}, warmup=0,
                       min_blocks=20, attempts=1)
    assert r["a"]["median_ms"] == approx(r["b"]["median_ms"])
    assert r["half"]["median_ms"] == approx(r["a"]["median_ms"] / 2)  # the ratio survives the spell
    assert r["a"]["blocks"] == 20 and r["a"]["calls_per_block"] == 50  # 50 ms blocks of 1 ms calls
    assert not r["a"]["stable"] and r["a"]["drift"] == approx(1.0)  # the halves' medians differ 2x: flagged


def test_interleaved_timing_remeasures_until_the_halves_agree(monkeypatch):
    import slimlab.profile.latency as lat

    clock = FakeClock(slow_from=0, slow_to=150)  # a short slow spell at the start only: 2 of a's first 4 blocks
    monkeypatch.setattr(lat.time, "perf_counter", clock)
    r = lat.timed_many({"a": clock.model(1.0), "b": clock.model(2.0)}, warmup=0, min_blocks=4, attempts=3)
    assert r["a"]["attempts"] > 1 and r["a"]["stable"] and r["b"]["stable"]
    assert r["a"]["median_ms"] == approx(1.0) and r["b"]["median_ms"] == approx(2.0)
