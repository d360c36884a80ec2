"""Self-supervised pretraining: RotNet, and probes on frozen features."""

from slimlab.ssl.probe import Probe, probe
from slimlab.ssl.rotnet import RotNetObjective, rotate_batch

__all__ = ["Probe", "RotNetObjective", "probe", "rotate_batch"]
