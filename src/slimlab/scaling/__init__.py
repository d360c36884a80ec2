"""Compound scaling (EfficientNet) and its grid search."""

from slimlab.scaling.compound import EFFICIENTNET, compound, flops_factor

__all__ = ["EFFICIENTNET", "compound", "flops_factor"]
