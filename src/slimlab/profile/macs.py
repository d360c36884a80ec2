"""Parameters and multiply-adds (MACs) of a model, counted by forward hooks.

Convention (docs/design.md): one multiply-add = 1 MAC; FLOPs = 2 x MACs only where a paper says FLOPs.
Counted: ``Conv2d`` (grouped and depthwise included) = out_elements * (C_in / groups) * k_h * k_w;
``Linear`` = out_elements * in_features. Normalisation, activations, pooling and additions are
not counted, as in the MobileNet/EfficientNet papers' tables.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def conv_macs(out_shape: torch.Size | tuple, cin: int, groups: int, kernel: tuple[int, int]) -> int:
    """MACs of a Conv2d producing ``out_shape`` [N, C_out, H, W]."""
    n_out = 1
    for d in out_shape:
        n_out *= int(d)
    return n_out * (cin // groups) * kernel[0] * kernel[1]


def count_macs(model: nn.Module, input_size: int | tuple[int, int] = 32, batch: int = 1,
               per_layer: bool = False, in_chans: int = 3) -> int | tuple[int, dict[str, int]]:
    """MACs of one forward pass on a [batch, 3, H, W] zero input (per image when batch=1)."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    layers: dict[str, int] = {}

    def hook(name):
        def fn(m, inp, out):
            if isinstance(m, nn.Conv2d):
                layers[name] = layers.get(name, 0) + conv_macs(out.shape, m.in_channels, m.groups, m.kernel_size)
            else:
                layers[name] = layers.get(name, 0) + out.numel() * m.in_features
        return fn

    hooks = [(m, hook(name)) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    _forward_with_hooks(model, hooks, (batch, in_chans, h, w))
    total = sum(layers.values())
    return (total, layers) if per_layer else total


def activation_bytes(model: nn.Module, input_size: int = 32, in_chans: int = 3) -> int:
    """Rough peak memory of one image's inference activations (fp32): three times the largest tensor any layer
    produces (its input, its output and a kept residual), from one batch-1 forward pass. Multiply by the batch."""
    largest = [in_chans * input_size * input_size]
    record = lambda m, i, o: largest.append(o.numel()) if torch.is_tensor(o) else None  # noqa: E731
    _forward_with_hooks(model, [(m, record) for m in model.modules() if not list(m.children())],
                        (1, in_chans, input_size, input_size))
    return 3 * 4 * max(largest)


def _forward_with_hooks(model: nn.Module, hooks: list, shape: tuple[int, ...]) -> None:
    """One eval-mode, no-grad forward pass on zeros of ``shape`` with (module, forward hook) pairs attached; the
    hooks are removed and the model's mode restored afterwards."""
    handles = [m.register_forward_hook(fn) for m, fn in hooks]
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        with torch.no_grad():
            model(torch.zeros(*shape, device=p.device if p is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
