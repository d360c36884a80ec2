"""Structural filter pruning: ThiNet (with least-squares re-weighting), APoZ, weight sum, random.

Criteria are objects in one registry (:mod:`slimlab.prune.criterion`); each lives in the file named
after it and registers itself. Schedules (layer by layer, one-shot) are in :mod:`slimlab.prune.pruner`,
the structural surgery (Torch-Pruning's dependency graph) in :mod:`slimlab.prune.graph`.
"""

from slimlab.prune import thinet
from slimlab.prune.apoz import APoZ, apoz_scores, select_by_apoz
from slimlab.prune.bn_recalibration import recalibrate_bn
from slimlab.prune.config import PruneConfig
from slimlab.prune.criterion import (
    ALIASES,
    CRITERIA,
    Criterion,
    CriterionOptions,
    LayerStats,
    Selection,
    build_criterion,
    canonical_name,
    register_criterion,
)
from slimlab.prune.graph import build_graph, find_prunable, prune_out_channels
from slimlab.prune.module import PruneReport, prune_module
from slimlab.prune.pruner import METHODS, Calibration, prune_model, ratio_for_macs
from slimlab.prune.random_criterion import Random, select_random
from slimlab.prune.thinet import ThiNet
from slimlab.prune.weight_sum import WeightSum, select_by_weight_sum, weight_sum_scores

__all__ = ["ALIASES", "APoZ", "CRITERIA", "Criterion", "CriterionOptions", "LayerStats", "METHODS", "Calibration",
           "PruneConfig", "PruneReport", "Random", "Selection", "ThiNet", "WeightSum", "apoz_scores", "build_criterion",
           "build_graph", "canonical_name", "find_prunable", "prune_model", "prune_module",
           "prune_out_channels", "ratio_for_macs", "recalibrate_bn",
           "register_criterion", "select_by_apoz", "select_by_weight_sum", "select_random", "thinet",
           "weight_sum_scores"]
