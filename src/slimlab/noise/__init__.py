"""Synthetic label noise and transition matrices."""

from slimlab.noise.corrupt import (
    CIFAR10_ASYM,
    cifar100_mapping,
    corrupt,
    intended_matrix,
    load_matrix,
    parse_noise,
    transition_matrix,
)

__all__ = ["CIFAR10_ASYM", "cifar100_mapping", "corrupt", "intended_matrix", "load_matrix", "parse_noise",
           "transition_matrix"]
