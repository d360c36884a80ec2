"""Structural filter pruning: ThiNet (with least-squares re-weighting), APoZ, weight sum, random."""

from slimlab.prune import thinet
from slimlab.prune.apoz import apoz_scores, select_by_apoz
from slimlab.prune.graph import build_graph, find_prunable, prune_out_channels
from slimlab.prune.pruner import METHODS, Calibration, PruneConfig, prune_model, ratio_for_macs
from slimlab.prune.random_criterion import select_random
from slimlab.prune.weight_sum import select_by_weight_sum, weight_sum_scores

__all__ = ["METHODS", "Calibration", "PruneConfig", "apoz_scores", "build_graph", "find_prunable", "prune_model",
           "prune_out_channels", "ratio_for_macs", "select_by_apoz", "select_by_weight_sum", "select_random",
           "thinet", "weight_sum_scores"]
