"""DistributedDataParallel plumbing for ``torchrun``: gloo on CPU, nccl on CUDA.

``Dist`` describes this process (rank, world size, device). Only rank 0 writes files; metrics are
summed across ranks with ``all_reduce``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from slimlab.errors import SlimlabError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; one line when it is not here."""
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise SlimlabError(f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SlimlabError(f"--device {spec}: no CUDA GPU is available here (use --device cpu or auto)")
        if dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
        if dev.index >= torch.cuda.device_count():
            raise SlimlabError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise SlimlabError(f"--device {spec}: MPS is not available here")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise SlimlabError(f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps")
    return dev


def setup(device: str = "auto") -> Dist:
    """Initialise the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, local, dev)


def cleanup(sync: bool = False) -> None:
    """Tear down the process group. ``sync`` waits for every rank first (the success path): a rank that
    destroys its gloo pairs while rank 0 is still writing files can abort at exit."""
    if dist.is_available() and dist.is_initialized():
        if sync:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], ctx: Dist) -> list[float]:
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def on_main(fn, ctx: Dist):
    """Run ``fn()`` on rank 0 only and give every rank the same outcome: its result (None elsewhere), or the same
    one-line :class:`SlimlabError` on every rank, so no rank waits forever for one that gave up."""
    if not ctx.enabled:
        return fn()
    result, error = None, ""
    if ctx.main:
        try:
            result = fn()
        except SlimlabError as e:
            error = str(e)
    box = [error]
    dist.broadcast_object_list(box, src=0)
    if box[0]:
        raise SlimlabError(box[0])
    return result


def any_rank(flag: bool, ctx: Dist) -> bool:
    """Whether ``flag`` holds on any rank (the same answer everywhere)."""
    return all_reduce_sum([float(flag)], ctx)[0] > 0 if ctx.enabled else flag


def all_gather_cat(t: torch.Tensor, ctx: Dist) -> torch.Tensor:
    """Concatenate a tensor from every rank along dim 0 (sizes may differ between ranks)."""
    if not ctx.enabled:
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world)]
    dist.all_gather(sizes, n)
    m = int(max(s.item() for s in sizes))
    pad = torch.zeros((m - t.shape[0],) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device)
    buf = [torch.zeros((m,) + tuple(t.shape[1:]), dtype=t.dtype, device=t.device) for _ in range(ctx.world)]
    dist.all_gather(buf, torch.cat([t, pad]))
    return torch.cat([b[: int(s.item())] for b, s in zip(buf, sizes)])


def barrier(ctx: Dist) -> None:
    if ctx.enabled:
        dist.barrier()
