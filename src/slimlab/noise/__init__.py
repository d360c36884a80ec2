"""Synthetic label noise and transition matrices."""

from slimlab.noise.corrupt import (
    CIFAR10_ASYM,
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    cifar100_mapping,
    corrupt,
    intended_matrix,
    load_matrix,
    mapping_for,
    parse_noise,
    transition_matrix,
)

__all__ = ["CIFAR10_ASYM", "CIFAR10_CLASSES", "CIFAR100_CLASSES", "cifar100_mapping", "corrupt", "intended_matrix",
           "load_matrix", "mapping_for", "parse_noise", "transition_matrix"]
