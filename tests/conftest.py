import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SLIMLAB_CACHE", "off")
torch.set_num_threads(min(2, os.cpu_count() or 1))

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg"


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None):
    """Run ``python -m slimlab ARGS`` and return the CompletedProcess (text mode)."""
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "slimlab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=e)


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    """A tiny image-folder tree: 3 classes, colour and grayscale PNGs of two sizes."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    root = tmp_path / "tiny"
    for split, n in (("train", 12), ("test", 4)):
        for ci, cls in enumerate(("cat", "dog", "emu")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                size = 20 if i % 2 else 24
                arr = (torch.rand(size, size, 3, generator=g) * 80 + ci * 80).to(torch.uint8).numpy()
                im = Image.fromarray(arr)
                if i % 3 == 0:
                    im = im.convert("L")
                im.save(d / f"{i:03d}.png")
    return root


class ListLoader:
    """A loader over fixed batches (dicts of "image", "target", "index"): what ``engine.fit`` needs of one."""

    def __init__(self, batches: list[dict]):
        self.batches = batches

    def set_epoch(self, epoch: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)
