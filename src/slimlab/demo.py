"""Alias: the demo lives in :mod:`slimlab.tasks.demo`."""

from slimlab.tasks.demo import demo_recipe, run_demo

__all__ = ["demo_recipe", "run_demo"]
