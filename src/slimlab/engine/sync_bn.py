"""Synchronised batch norm that also works on CPU (gloo), where ``nn.SyncBatchNorm`` refuses to run.

In training, per-channel sums, sums of squares and counts are all-reduced across ranks with the
autograd-aware all-reduce (backward: the all-reduced gradient), so every rank normalises with the global batch's
mean and (biased) variance and gradients flow through the statistics, as in ``nn.SyncBatchNorm``;
running statistics use the unbiased variance. On CUDA the engine uses ``nn.SyncBatchNorm``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of each rank's input is the sum of every rank's output gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce(x: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(x)


class CPUSyncBatchNorm(nn.BatchNorm2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        c = x.shape[1]
        # float64 sums: E[x^2] - E[x]^2 cancels badly in float32 when |mean| >> std
        xd = x.double()
        n = torch.full((1,), x.numel() / c, dtype=torch.float64, device=x.device)
        stats = all_reduce(torch.cat([xd.sum((0, 2, 3)), (xd * xd).sum((0, 2, 3)), n]))
        total = stats[-1]
        mean64 = stats[:c] / total
        var = (stats[c: 2 * c] / total - mean64 * mean64).clamp_min(0).to(x.dtype)
        mean = mean64.to(x.dtype)
        with torch.no_grad():
            if self.num_batches_tracked is not None:
                self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * total / (total - 1).clamp_min(1), alpha=m)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def _swap(module: nn.modules.batchnorm._BatchNorm, cls: type) -> nn.Module:
    """A ``cls`` layer that shares ``module``'s parameters and buffers (requires_grad, dtype, device kept)."""
    out = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
              device="meta")
    for name in ("weight", "bias"):
        setattr(out, name, getattr(module, name))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        out.register_buffer(name, getattr(module, name))
    out.train(module.training)
    return out


def convert_sync_batchnorm(module: nn.Module, cuda: bool) -> nn.Module:
    """Replace every BatchNorm2d: ``nn.SyncBatchNorm`` on CUDA, :class:`CPUSyncBatchNorm` on CPU."""
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, CPUSyncBatchNorm):
        out = _swap(module, CPUSyncBatchNorm)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, cuda))
    return out


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Undo :func:`convert_sync_batchnorm` in place: plain ``BatchNorm2d`` layers sharing the same tensors."""
    out = module
    if isinstance(module, (nn.SyncBatchNorm, CPUSyncBatchNorm)):
        out = _swap(module, nn.BatchNorm2d)
    for name, child in module.named_children():
        out.add_module(name, revert_sync_batchnorm(child))
    return out
