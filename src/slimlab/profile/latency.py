"""Measured latency you can trust: timed blocks, the median with p10 and p90, unstable runs re-measured.

One forward pass of a small model takes well under a millisecond, so single calls are dominated by
timer and scheduler noise. ``timed`` runs the function in *blocks* of k calls (k chosen so a block
lasts about ``block_s``), records the mean time per call of each block, and stops after at least
``min_blocks`` blocks and ``min_s`` seconds. The spread is (p90 - p10) / median over blocks; when it
exceeds ``max_spread`` the whole measurement is repeated (up to ``attempts`` times) and the attempt
with the smallest spread is kept. The result says whether it ended ``stable``.

``timed_many`` compares several functions (models) fairly: it times one block of each in turn, round
after round, so a slow spell of the machine (another process, a noisy neighbour) lands on all of them
alike instead of on whichever was measured at that moment. On 2 cores, measuring four models one
after the other gave two identical networks 0.23 and 0.37 ms; interleaved, they agree. There a result is
``stable`` when the medians of the first and the second half of its blocks agree within ``max_drift``
(the number reproduces), since a right tail of slow blocks widens p10-p90 without moving the median.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn as nn


def _one_attempt(fn: Callable[[], object], per: int, min_blocks: int, min_s: float) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_blocks or time.perf_counter() - start < min_s:
        t0 = time.perf_counter()
        for _ in range(per):
            fn()
        times.append((time.perf_counter() - t0) * 1000 / per)
    return times


def summarize(times: list[float]) -> dict:
    """Median, p10, p90 (ms) and the relative spread (p90 - p10) / median of per-call times."""
    q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
    med = statistics.median(times)
    return {"median_ms": med, "p10_ms": q[0], "p90_ms": q[-1], "spread": (q[-1] - q[0]) / med if med else 0.0}


def timed(fn: Callable[[], object], warmup: int = 3, min_blocks: int = 10, min_s: float = 0.5, block_s: float = 0.05,
          max_spread: float = 0.25, attempts: int = 3, sync: Callable[[], None] = lambda: None) -> dict:
    """Time ``fn`` in blocks (see the module's docstring); returns median/p10/p90 ms, spread, blocks, stable."""

    def call():
        fn()
        sync()

    per = _calls_per_block(call, warmup, block_s)
    best = None
    for attempt in range(1, attempts + 1):
        times = _one_attempt(call, per, min_blocks, min_s)
        r = {**summarize(times), "blocks": len(times), "calls_per_block": per, "attempts": attempt}
        if best is None or r["spread"] < best["spread"]:
            best = r
        if r["spread"] <= max_spread:
            break
    best["attempts"] = attempt
    best["stable"] = best["spread"] <= max_spread
    return best


def _calls_per_block(fn: Callable[[], object], warmup: int, block_s: float) -> int:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    return max(1, int(block_s / max(time.perf_counter() - t0, 1e-7)))


def timed_many(fns: dict[str, Callable[[], object]], warmup: int = 3, min_blocks: int = 10, block_s: float = 0.05,
               max_drift: float = 0.1, attempts: int = 3) -> dict[str, dict]:
    """Time several functions interleaved: round r times one block of each (in a rotating order). After
    ``min_blocks`` rounds, if any result is not stable (see the module's docstring), all get ``min_blocks``
    more rounds, up to ``attempts`` times in all. Returns, per name, the fields of :func:`timed` plus
    ``drift``, the relative difference of the two halves' medians."""
    names = list(fns)
    if not names:
        return {}
    per = {n: _calls_per_block(fns[n], warmup, block_s) for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for attempt in range(1, max(1, attempts) + 1):
        for r in range(max(2, min_blocks)):  # two blocks at least: the halves need one each
            for n in names[r % len(names):] + names[: r % len(names)]:
                t0 = time.perf_counter()
                for _ in range(per[n]):
                    fns[n]()
                times[n].append((time.perf_counter() - t0) * 1000 / per[n])
        out = {n: {**summarize(times[n]), "drift": _drift(times[n]), "blocks": len(times[n]),
                   "calls_per_block": per[n], "attempts": attempt} for n in names}
        if all(o["drift"] <= max_drift for o in out.values()):
            break
    for o in out.values():
        o["stable"] = o["drift"] <= max_drift
    return out


def _drift(times: list[float]) -> float:
    h = len(times) // 2
    a, b = statistics.median(times[:h] or times), statistics.median(times[h:])
    return abs(a - b) / min(a, b) if min(a, b) > 0 else 0.0


def measure_latency(model: nn.Module, input_size: int = 32, batch: int = 1, warmup: int = 5, iters: int = 20,
                    device: str | torch.device = "cpu", threads: int | None = None,
                    min_time_s: float = 0.5) -> dict:
    """Eager PyTorch forward latency of ``model`` on a random [batch, 3, s, s] input: median, p10 and p90 in ms
    over at least ``iters`` timed blocks (:func:`timed`), with ``stable`` false if the spread stayed large."""
    device = torch.device(device)
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        model = model.to(device).eval()
        x = torch.randn(batch, 3, input_size, input_size, device=device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        with torch.inference_mode():
            r = timed(lambda: model(x), warmup=warmup, min_blocks=iters, min_s=min_time_s, sync=sync)
        return {"batch": batch, **r, "iters": r["blocks"], "threads": torch.get_num_threads(), "device": str(device),
                "images_per_s": batch * 1000 / r["median_ms"]}
    finally:
        torch.set_num_threads(old)
