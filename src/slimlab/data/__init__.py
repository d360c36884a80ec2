"""Data sets (``build``), stratified splits and the batched in-memory loader."""

from __future__ import annotations

from collections.abc import Callable

from slimlab.data.datasets import DataSet, Split, cifar, digits, fake, from_datasets, imagefolder
from slimlab.data.loader import BatchLoader, random_crop_flip
from slimlab.data.split import first_per_class, stratified_split, stratified_subset
from slimlab.errors import SlimlabError

__all__ = ["DataSet", "Split", "BatchLoader", "build", "first_per_class", "from_datasets", "is_named", "names",
           "random_crop_flip", "stratified_split", "stratified_subset"]

_REGISTRY: dict[str, Callable[..., DataSet]] = {
    "digits": lambda root, download, image_size: digits(image_size or 32),
    "fake": lambda root, download, image_size: fake(image_size=image_size or 32),
    "cifar10": lambda root, download, image_size: cifar("cifar10", root, download, image_size),
    "cifar100": lambda root, download, image_size: cifar("cifar100", root, download, image_size),
}


def names() -> list[str]:
    return sorted(_REGISTRY) + ["imagefolder:PATH"]


def is_named(spec: str) -> bool:
    """Whether ``spec`` names data slimlab can build again (a registry name or ``imagefolder:PATH``), unlike the
    name of data given from Python (``from_datasets``' ``custom``)."""
    return spec in _REGISTRY or spec.startswith("imagefolder:")


def build(spec: str, root: str = "~/.cache/slimlab/data", download: bool = False, image_size: int = 0) -> DataSet:
    """Build a data set from its spec: ``digits``, ``fake``, ``cifar10``, ``cifar100`` or ``imagefolder:PATH``."""
    if spec.startswith("imagefolder:"):
        return imagefolder(spec.split(":", 1)[1], image_size)
    if spec not in _REGISTRY:
        raise SlimlabError(f"unknown data set '{spec}' (choose from {', '.join(names())})")
    return _REGISTRY[spec](root, download, image_size)
