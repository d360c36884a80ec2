"""Parameters, multiply-adds (MACs) and measured latency."""

from __future__ import annotations

import torch.nn as nn

from slimlab.profile.latency import measure_latency
from slimlab.profile.macs import conv_macs, count_macs, count_params

__all__ = ["count_params", "count_macs", "conv_macs", "measure_latency", "profile_model"]


def profile_model(model: nn.Module, input_size: int = 32, batches: tuple[int, ...] = (1, 64),
                  threads: int | None = None, iters: int = 20, device: str = "cpu") -> dict:
    """Params, MACs per image and latency at each batch size."""
    out = {"params": count_params(model), "macs": count_macs(model, input_size), "input_size": input_size,
           "latency": [measure_latency(model, input_size, b, device=device, threads=threads,
                                       iters=iters if b == 1 else max(3, iters // 4)) for b in batches]}
    return out
