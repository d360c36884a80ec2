"""Synthetic label noise, transition matrices, and label issues found from predicted probabilities."""

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
from slimlab.noise.label_issues import find_label_issues

__all__ = ["CIFAR10_ASYM", "CIFAR10_CLASSES", "CIFAR100_CLASSES", "cifar100_mapping", "corrupt", "find_label_issues",
           "intended_matrix", "load_matrix", "mapping_for", "parse_noise", "transition_matrix"]
