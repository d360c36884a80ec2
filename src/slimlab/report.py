"""Alias: the report lives in :mod:`slimlab.tasks.report`."""

from slimlab.tasks.report import build_report

__all__ = ["build_report"]
