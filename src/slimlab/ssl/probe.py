"""Alias: the probe model lives in :mod:`slimlab.models.probe` (it is a model: a frozen trunk and a head)."""

from slimlab.models.probe import Probe, probe

__all__ = ["Probe", "probe"]
