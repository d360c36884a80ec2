"""Options of a pruning job (``slimlab prune``, ``api.prune``, a recipe's prune step)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PruneConfig:
    """Options of ``slimlab prune``. Field comments are the CLI help."""

    POSITIONAL = ("checkpoint",)
    CHOICES = {"mode": ("layerwise", "oneshot"), "thinet_variant": ("iccv", "tpami"),
               "thinet_target": ("current", "original"), "apoz_at": ("relu", "first_input"),
               "allocation": ("uniform", "global", "sensitivity"),
               "progress": ("auto", "bar", "log", "none")}
    ALIASES = {"ratio": "keep_ratio"}  # old name -> field (``--ratio`` and ``ratio:`` still work)
    RANGES = {"keep_ratio": "(0, 1]", "prune_ratio": "[0, 1)", "round_to": "[1, 4096]", "bn_images": "[0, 1000000]",
              "target_macs": "(0, 1]", "calib_per_class": ">= 1",
              "samples_per_image": ">= 1", "ft_per_layer": ">= 0", "ft_lr": "> 0",
              "ft_layer_epochs": "[0, 1000]", "ft_layer_lr": "> 0", "samples_per_weight": ">= 0",
              "finetune_epochs": ">= 0", "allocation_floor": "(0, 1]", "sensitivity_images": ">= 1",
              "batch_size": ">= 1", "seed": "[0, 4294967295]", "threads": "[0, 4096]"}

    checkpoint: str = ""  # the trained model (.pt, run directory, or zoo:NAME)
    data: str = ""  # data set (default: the checkpoint's)
    root: str = ""  # where cifar10/cifar100 live (default: the checkpoint's)
    method: str = "thinet"  # thinet | apoz | weight_sum (alias l1) | random
    keep_ratio: float | None = None  # fraction of channels KEPT in each pruned layer (ThiNet's rate r; default 0.5)
    prune_ratio: float | None = None  # instead of --keep-ratio: fraction REMOVED (Torch-Pruning's pruning_ratio)
    target_macs: float | None = None  # instead of --keep-ratio: prune to at most this fraction of the MACs (bisection)
    round_to: int = 1  # kept channels a multiple of N in every pruned layer (8: kernels run faster)
    allocation: str = "uniform"  # uniform (ThiNet) | global (rank across layers) | sensitivity (least predicted loss)
    allocation_floor: float = 0.1  # global / sensitivity: every layer keeps at least this fraction of its channels
    sensitivity: str = ""  # --allocation sensitivity: a profile (sensitivity.json of a prune run); default: measure
    sensitivity_images: int = 1000  # held-out images (validation split, else training) the profile is measured on
    layers: list = field(default_factory=list)  # layer names to prune (default: ThiNet's choice)
    ignore_layers: list = field(default_factory=list)  # modules whose convs keep their channels (e.g. layer3.2)
    bn_recalibrate: bool = True  # re-estimate BatchNorm statistics on --bn-images training images after pruning
    bn_images: int = 1000  # training images (augmented as in training) for the BatchNorm re-estimation
    mode: str = "layerwise"  # layerwise | oneshot
    thinet_variant: str = "iccv"  # iccv (greedy removal) | tpami (forward selection)
    apoz_at: str = "relu"  # APoZ measured at layer i's ReLU output (Hu et al.) | first_input (after pooling)
    thinet_refine: bool = False  # ThiNet: refine the selected set by swap local search (slimlab's extension)
    thinet_target: str = "current"  # layerwise re-weighting target: current (ThiNet) | original (unpruned model)
    calib_per_class: int = 10  # calibration images per class (the paper: 10)
    samples_per_image: int = 10  # ThiNet (filter, location) samples per image (the paper: 10)
    samples_per_weight: float = 10.0  # ThiNet: at least this many samples per least-squares weight (more per image)
    ft_layer_epochs: float = 1.0  # layerwise: fine-tune after each pruned layer, in epochs (ThiNet: ~1); 0 = none
    ft_per_layer: int = 0  # instead of --ft-layer-epochs: this many SGD steps after each pruned layer
    ft_layer_lr: float = 0.001  # learning rate of the fine-tuning between layers (ThiNet: 0.001)
    ft_lr: float = 0.01  # learning rate of the final fine-tuning (cosine)
    finetune_epochs: int = 0  # final fine-tuning epochs
    labels_from: str = ""  # fine-tune on a run's corrected labels (from slimlab labels, else PENCIL's y~)
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    latency: bool = True  # measure CPU latency of the original and the pruned model
    progress: str = "auto"
    out: str = ""  # run directory; default <checkpoint's run>-<method>[-N] beside it (zoo: runs/<name>-<method>)
    overwrite: bool = False  # start over in a non-empty --out (deletes the files of the run found there)

    @property
    def ratio(self) -> float:
        """The old name of ``keep_ratio``."""
        return self.resolved_keep_ratio()

    def resolved_keep_ratio(self) -> float:
        """``keep_ratio``, or 1 - ``prune_ratio``, or 0.5; one line when both ratios are given."""
        return resolve_keep_ratio(self.keep_ratio, self.prune_ratio)


def resolve_keep_ratio(keep_ratio: float | None, prune_ratio: float | None) -> float:
    """The fraction of channels kept: ``keep_ratio`` (ThiNet's), or 1 - ``prune_ratio`` (Torch-Pruning's), or 0.5."""
    from slimlab.errors import SlimlabError

    if keep_ratio is not None and prune_ratio is not None:
        raise SlimlabError("give --keep-ratio (fraction kept) or --prune-ratio (fraction removed), not both")
    if prune_ratio is not None:
        if not 0 <= prune_ratio < 1:
            raise SlimlabError(f"prune_ratio must be in [0, 1), got {prune_ratio}")
        return 1.0 - prune_ratio
    return 0.5 if keep_ratio is None else keep_ratio
