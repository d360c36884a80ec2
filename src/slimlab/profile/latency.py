"""Measured latency you can trust: timed blocks, the median with p10 and p90, unstable runs re-measured.

One forward pass of a small model takes well under a millisecond, so single calls are dominated by
timer and scheduler noise. ``timed`` runs the function in *blocks* of k calls (k chosen so a block
lasts about ``block_s``), records the mean time per call of each block, and stops after at least
``min_blocks`` blocks and ``min_s`` seconds. The spread is (p90 - p10) / median over blocks; when it
exceeds ``max_spread`` the whole measurement is repeated (up to ``attempts`` times) and the attempt
with the smallest spread is kept. The result says whether it ended ``stable``.
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
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    per = max(1, int(block_s / max(time.perf_counter() - t0, 1e-7)))

    def call():
        fn()
        sync()

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
