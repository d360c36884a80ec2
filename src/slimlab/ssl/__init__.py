"""Self-supervised pretraining: RotNet, and probes on frozen features (the probe model is in models)."""

from slimlab.models.probe import Probe, probe
from slimlab.ssl.rotnet import RotNetObjective, rotate_batch

__all__ = ["Probe", "RotNetObjective", "probe", "rotate_batch"]
