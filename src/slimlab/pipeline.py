"""Alias: the recipe runner lives in :mod:`slimlab.tasks.run`."""

from slimlab.tasks.run import check_recipe, load_recipe, run_recipe

__all__ = ["check_recipe", "load_recipe", "run_recipe"]
