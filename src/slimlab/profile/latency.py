"""Measured latency: the median of timed forward passes after warm-up, threads stated."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn


def measure_latency(model: nn.Module, input_size: int = 32, batch: int = 1, warmup: int = 5, iters: int = 20,
                    device: str | torch.device = "cpu", threads: int | None = None,
                    min_time_s: float = 0.0) -> dict:
    """Median, p10 and p90 forward latency in milliseconds of ``model`` on a random [batch, 3, s, s] input."""
    device = torch.device(device)
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        model = model.to(device).eval()
        x = torch.randn(batch, 3, input_size, input_size, device=device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        times: list[float] = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            sync()
            start = time.perf_counter()
            while len(times) < iters or (time.perf_counter() - start) < min_time_s:
                t0 = time.perf_counter()
                model(x)
                sync()
                times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        q = statistics.quantiles(times, n=10) if len(times) >= 2 else [times[0]] * 9
        return {"batch": batch, "median_ms": statistics.median(times), "p10_ms": q[0], "p90_ms": q[-1],
                "iters": len(times), "threads": torch.get_num_threads(), "device": str(device),
                "images_per_s": batch * 1000 / statistics.median(times)}
    finally:
        torch.set_num_threads(old)
