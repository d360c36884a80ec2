"""The pruning-criterion protocol and its one registry (after Torch-Pruning's ``Importance``).

A criterion decides which output channels of a prunable layer i to keep. It declares what it
needs collected over the calibration images (``needs``), and :meth:`Criterion.select` receives the
layer, the number of channels to keep and those statistics, and returns a :class:`Selection`:
the kept channel indices and, for criteria that re-weight (ThiNet), per-kept-channel scales for
the input slices of layer i+1.

Adding a criterion means adding one file: subclass :class:`Criterion`, give it a ``name`` and call
:func:`register_criterion` at the bottom of the file, then import the file in ``prune/__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from slimlab.errors import SlimlabError

FIRST_INPUT = "first_input"  # the activation read by the first conv after layer i (post BN and ReLU)
CONSUMER_INPUT = "consumer_input"  # the input of layer i+1, the dense conv that consumes layer i's channels
# layer i's output before its nonlinearity: its BatchNorm's output when a BN reads the conv directly, else the
# conv's. ReLU(a) is exactly zero where a <= 0, so this gives the ReLU output's zeros before any pooling.
ACTIVATION = "activation"


@dataclass
class LayerStats:
    """What the schedule collected for one layer, by name of the need."""

    first_input: torch.Tensor | None = None
    consumer_input: torch.Tensor | None = None
    activation: torch.Tensor | None = None
    # ThiNet with the "original" target: (generator, samples per image) -> the unpruned model's responses at the
    # sampled positions
    target_responses: Callable[[torch.Generator, int], torch.Tensor] | None = None


@dataclass
class Selection:
    kept: torch.Tensor  # sorted indices of the kept output channels of layer i
    scales: torch.Tensor | None = None  # per kept channel: scale of layer i+1's input slice (ThiNet Eq. 6)


@dataclass
class CriterionOptions:
    """Options some criteria read (the others ignore them)."""

    variant: str = "iccv"  # ThiNet: iccv (greedy removal) | tpami (forward selection)
    per_image: int = 10  # ThiNet: sampled (filter, location) pairs per calibration image
    samples_per_weight: float = 0.0  # ThiNet: draw more per image until m >= this x the kept channels; 0 = off
    apoz_at: str = "relu"  # APoZ: relu (layer i's ReLU output, Hu et al.) | first_input (the next conv's input)
    refine: bool = False  # ThiNet: improve the selected set by swap local search on Eq. 5 (thinet_refine.py)
    extra: dict = field(default_factory=dict)


class Criterion:
    """Base class: subclasses set ``name`` and ``needs`` and implement ``select``.

    ``layer`` is a :class:`slimlab.prune.graph.PrunableLayer`: ``conv`` (layer i), ``consumer`` (layer i+1)
    and ``first`` (the first conv reading layer i's activation), with their names."""

    name: str = ""
    needs: frozenset[str] = frozenset()
    reweights: bool = False  # returns scales for layer i+1 (then a re-weighting target may be given)

    def __init__(self, options: CriterionOptions | None = None):
        self.options = options or CriterionOptions()

    def select(self, layer: Any, keep: int, stats: LayerStats, generator: torch.Generator) -> Selection:
        raise NotImplementedError

    def scores(self, layer: Any, stats: LayerStats, generator: torch.Generator) -> torch.Tensor:
        """Importance of every output channel of layer i (higher: keep), for ``--allocation global``."""
        raise SlimlabError(f"{self.name} gives no per-channel importance: --allocation global cannot use it")


CRITERIA: dict[str, type[Criterion]] = {}
ALIASES: dict[str, str] = {}


def register_criterion(cls: type[Criterion], aliases: tuple[str, ...] = ()) -> type[Criterion]:
    CRITERIA[cls.name] = cls
    for a in aliases:
        ALIASES[a] = cls.name
    return cls


def canonical_name(name: str) -> str:
    """The criterion's one name (``l1`` -> ``weight_sum``); unknown names raise a one-line error."""
    name = ALIASES.get(name, name)
    if name not in CRITERIA:
        known = sorted([*CRITERIA, *ALIASES])
        raise SlimlabError(f"unknown pruning method '{name}' (choose from {', '.join(known)})")
    return name


def build_criterion(name: str, options: CriterionOptions | None = None) -> Criterion:
    return CRITERIA[canonical_name(name)](options)
