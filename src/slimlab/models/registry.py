"""One registry for every model: ``create_model(name, num_classes, **kwargs)``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch.nn as nn

from slimlab.errors import SlimlabError


@dataclass
class ModelEntry:
    name: str
    fn: Callable[..., nn.Module]
    defaults: dict = field(default_factory=dict)
    family: str = ""
    input_size: int = 32  # the input size the model is meant for (profiling default)
    doc: str = ""


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, fn: Callable[..., nn.Module], *, family: str = "", input_size: int = 32,
                   doc: str = "", **defaults) -> None:
    _MODELS[name] = ModelEntry(name, fn, defaults, family, input_size, doc or (fn.__doc__ or "").strip().split("\n")[0])


def list_models(family: str | None = None) -> list[str]:
    return sorted(n for n, e in _MODELS.items() if family is None or e.family == family)


def get_entry(name: str) -> ModelEntry:
    if name.startswith("tv:"):
        return ModelEntry(name, _torchvision, {"tv_name": name[3:]}, "torchvision", 224, f"torchvision {name[3:]}")
    if name not in _MODELS:
        raise SlimlabError(f"unknown model '{name}' (see `slimlab models`; torchvision models as tv:NAME)")
    return _MODELS[name]


def _torchvision(num_classes: int = 1000, tv_name: str = "", pretrained: bool = False, **kwargs) -> nn.Module:
    """Any torchvision classifier by name; ``pretrained`` loads its default weights (needs the internet)."""
    import torchvision

    if tv_name not in torchvision.models.list_models(module=torchvision.models):
        raise SlimlabError(f"unknown torchvision classifier '{tv_name}'")
    if pretrained:
        m = torchvision.models.get_model(tv_name, weights="DEFAULT", **kwargs)
        if num_classes != 1000:
            reset_classifier(m, num_classes)
        return m
    return torchvision.models.get_model(tv_name, weights=None, num_classes=num_classes, **kwargs)


def reset_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the model's classifier (its last ``nn.Linear``) by a fresh one with ``num_classes`` outputs.

    A model may define its own ``reset_classifier(num_classes)`` (as timm's models do); it is used first."""
    own = getattr(type(model), "reset_classifier", None)
    if callable(own):
        model.reset_classifier(num_classes)
        return model
    last_name, last = None, None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last_name, last = n, m
    if last is None:
        raise SlimlabError("cannot find a linear head to replace")
    parent = model.get_submodule(last_name.rsplit(".", 1)[0]) if "." in last_name else model
    setattr(parent, last_name.rsplit(".", 1)[-1], nn.Linear(last.in_features, num_classes))
    return model


_replace_head = reset_classifier  # the old private name


# the stated range of the model arguments every family shares (checked before building anything)
ARG_RANGES = {"width_mult": (0.01, 64.0), "depth_mult": (0.01, 64.0), "width": (1, 100_000), "depth": (1, 10_000),
              "dropout": (0.0, 0.999), "num_classes": (1, 1_000_000), "input_size": (8, 4096), "block": (1, 16)}


def check_model_args(name: str, args: dict) -> None:
    """One line for a model argument outside its range (``width_mult: -1``, ``num_classes: 0``)."""
    for key, (lo, hi) in ARG_RANGES.items():
        if key not in args:
            continue
        v = args[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise SlimlabError(f"model '{name}': '{key}' must be a number in [{lo}, {hi}], got {v!r}")


def create_model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """Build a registered model. Unknown keyword arguments, and arguments out of range, raise :class:`SlimlabError`."""
    entry = get_entry(name)
    args = {**entry.defaults, **kwargs}
    check_model_args(name, {**args, "num_classes": num_classes})
    params = inspect.signature(entry.fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        bad = sorted(set(args) - set(params))
        if bad:
            raise SlimlabError(f"model '{name}' does not take argument(s) {', '.join(bad)}")
    try:
        return entry.fn(num_classes=num_classes, **args)
    except (TypeError, ValueError, ZeroDivisionError, IndexError, KeyError, AssertionError) as e:
        raise SlimlabError(f"model '{name}' cannot be built with {args}: {type(e).__name__}: {e}") from None
    except RuntimeError as e:  # e.g. a layer with zero channels
        raise SlimlabError(f"model '{name}' cannot be built with {args}: {str(e).splitlines()[0][:200]}") from None
