"""A batch loader over in-memory uint8 tensors with batched augmentation.

Per-sample Python transforms in DataLoader workers cap a 2-core machine at a few thousand images
per second; here a batch is gathered with one index op, randomly cropped (zero padding) and
flipped with vectorised ops, then normalised, on the training device. Shuffling and augmentation
are seeded by (seed, epoch), so an epoch is the same whether or not the run was resumed.

Under DDP each rank takes ``perm[rank::world]`` of the epoch's permutation (as
``DistributedSampler`` does), so the union of the ranks' step-t batches is exactly the
single-process step-t batch of the same global batch size.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator

import torch

from slimlab.data.datasets import Split


def random_crop_flip(x: torch.Tensor, pad: int, flip: bool, g: torch.Generator) -> torch.Tensor:
    """Random ``pad``-padded crop back to the input size, and a random horizontal flip, per image."""
    b, c, h, w = x.shape
    if pad > 0:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=g)
        rows = (oy[:, None] + torch.arange(h)).to(x.device)  # [B, H]
        cols = (ox[:, None] + torch.arange(w)).to(x.device)  # [B, W]
        bi = torch.arange(b, device=x.device)[:, None, None]
        x = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        f = (torch.rand(b, generator=g) < 0.5).to(x.device)
        x = torch.where(f[:, None, None, None], x.flip(-1), x)
    return x


class BatchLoader:
    """Iterates ``{"image", "target", "index"}`` batches over ``split[indices]``.

    ``targets`` overrides the split's targets (noisy labels); ``index`` is the position in the
    training set, which per-sample methods (PENCIL) use as a key.
    """

    def __init__(self, split: Split, indices: torch.Tensor, batch_size: int, *, mean, std,
                 shuffle: bool = False, augment: bool = False, pad: int = 4, flip: bool = True,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world: int = 1,
                 device: torch.device | str = "cpu", targets: torch.Tensor | None = None,
                 channels_last: bool = False, epoch_size: int = 0):
        self.split, self.indices = split, indices.long()
        self.epoch_size = epoch_size  # > 0: an epoch is this many samples, drawn with repetition (RotNet's few-label)
        self.targets = split.targets if targets is None else targets
        self.batch_size, self.shuffle, self.augment = batch_size, shuffle, augment
        self.pad, self.flip, self.drop_last = pad, flip, drop_last
        self.seed, self.rank, self.world, self.epoch = seed, rank, world, 0
        self.device = torch.device(device)
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1) * 255
        self.channels_last = channels_last
        if world > 1 and batch_size % world:
            raise ValueError(f"batch size {batch_size} is not divisible by {world} processes")
        self.local_batch = batch_size // world

    def unaugmented(self) -> BatchLoader:
        """The same samples once each, in order, without augmentation (for predictions on the training set)."""
        view = copy.copy(self)
        view.shuffle = view.augment = view.drop_last = False
        view.epoch_size = 0
        return view

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        idx = self.indices
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            if self.epoch_size and len(idx):  # whole shuffled passes, repeated until epoch_size samples
                passes = -(-self.epoch_size // len(idx))
                idx = torch.cat([idx[torch.randperm(len(idx), generator=g)] for _ in range(passes)])[: self.epoch_size]
            else:
                idx = idx[torch.randperm(len(idx), generator=g)]
        if self.world > 1:
            if self.shuffle:  # pad to a multiple of world, as DistributedSampler does
                extra = (-len(idx)) % self.world
                idx = torch.cat([idx, idx[:extra]])
            idx = idx[self.rank :: self.world]
        return idx

    def __len__(self) -> int:
        n = len(self._order())
        if self.drop_last and n >= self.local_batch:
            return n // self.local_batch
        return math.ceil(n / self.local_batch)

    @property
    def num_samples(self) -> int:
        return len(self._order())

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = self._order()
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch + 7919 * (self.rank + 1))
        n_batches = len(self)
        for i in range(n_batches):
            idx = order[i * self.local_batch : (i + 1) * self.local_batch]
            x = self.split.images[idx].to(self.device, non_blocking=True)
            if self.augment:
                x = random_crop_flip(x, self.pad, self.flip, g)
            x = (x.float() - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield {"image": x, "target": self.targets[idx].to(self.device), "index": idx.to(self.device)}
