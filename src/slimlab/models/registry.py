"""One registry for every model: ``create_model(name, num_classes, **kwargs)``."""

from __future__ import annotations

import inspect
import os
import re
import sys
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
    """The entry of ``name``: a registered model, ``tv:NAME`` (torchvision), ``timm:NAME`` (timm) or
    ``module:pkg.mod:callable`` (a user's own constructor; the module must be allowed, see :func:`allow_module`)."""
    if name.startswith("tv:"):
        return ModelEntry(name, _named(_torchvision, name[3:]), {}, "torchvision", 224, f"torchvision {name[3:]}")
    if name.startswith("timm:"):
        return ModelEntry(name, _named(_timm, name[5:]), {}, "timm", 224, f"timm {name[5:]}")
    if name.startswith("module:"):
        return ModelEntry(name, _named(_user_module, name[7:]), {}, "module", 32, f"user constructor {name[7:]}")
    if name not in _MODELS:
        raise SlimlabError(f"unknown model '{name}' (see `slimlab models`; torchvision models as tv:NAME, timm "
                           "models as timm:NAME, your own as module:pkg.mod:callable)")
    return _MODELS[name]


def _named(fn: Callable[..., nn.Module], target: str) -> Callable[..., nn.Module]:
    """``fn`` bound to the model named after the prefix: no model argument can replace that name."""
    def build(num_classes: int = 1000, **kwargs) -> nn.Module:
        return fn(target, num_classes, **kwargs)
    build.__doc__ = fn.__doc__
    return build


def _torchvision(tv_name: str, num_classes: int = 1000, pretrained: bool = False, **kwargs) -> nn.Module:
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


def _timm(timm_name: str, num_classes: int = 1000, pretrained: bool = False, **kwargs) -> nn.Module:
    """Any timm model by name, built from its definition; ``pretrained`` downloads its weights (needs the internet)."""
    try:
        import timm
    except ImportError:
        raise SlimlabError("timm:NAME needs timm (pip install timm)") from None
    if not timm.is_model(timm_name):
        raise SlimlabError(f"unknown timm model '{timm_name}' (timm.list_models() lists them)")
    return timm.create_model(timm_name, pretrained=pretrained, num_classes=num_classes, **kwargs)


# --- a user's own constructor: ``module:pkg.mod:callable`` ---------------------------------------------------
_ALLOWED: set[str] = set()
ALLOW_ENV = "SLIMLAB_ALLOW_MODULES"


def allow_module(spec: str) -> None:
    """Allow ``module:`` models from this module (a dotted name, or a ``module:pkg.mod:callable`` spec).

    Building such a model imports and runs the module's code, so slimlab does it only for modules the user
    named: typed on the command line (``--model``, ``--set model=``, ``--allow-module``), through this function,
    or in the environment variable ``SLIMLAB_ALLOW_MODULES`` (comma-separated). A file never allows one: not a
    checkpoint, a ``--config``, a recipe, nor a run's config.yaml (``--resume``, ``labels``)."""
    _ALLOWED.add(_split_spec(spec[7:] if spec.startswith("module:") else spec + ":_")[0])


def allowed_modules() -> set[str]:
    env = {m.strip() for m in os.environ.get(ALLOW_ENV, "").split(",") if m.strip()}
    return _ALLOWED | env


def _split_spec(target: str) -> tuple[str, str]:
    mod, _, attr = target.partition(":")
    ident = r"[A-Za-z_][A-Za-z0-9_]*"
    if not re.fullmatch(rf"{ident}(\.{ident})*", mod) or not re.fullmatch(rf"{ident}(\.{ident})*", attr):
        raise SlimlabError(f"'module:{target}' is not module:pkg.mod:callable (dotted Python names)")
    return mod, attr


def _user_module(target: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """A user's constructor ``pkg.mod:callable``, imported from the current directory or the Python path. It
    receives ``num_classes`` if it takes it; otherwise its last linear layer is replaced when its size differs."""
    fn = _user_callable(target)
    params = inspect.signature(fn).parameters if _has_signature(fn) else {}
    takes_nc = "num_classes" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    model = fn(num_classes=num_classes, **kwargs) if takes_nc else fn(**kwargs)
    if not isinstance(model, nn.Module):
        raise SlimlabError(f"module:{target} returned {type(model).__name__}, not a torch.nn.Module")
    if not takes_nc:
        last = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if last and last[-1].out_features != num_classes:
            reset_classifier(model, num_classes)
    return model


def _user_callable(target: str) -> Callable[..., nn.Module]:
    """The user's constructor ``pkg.mod:callable``, imported only if its module was allowed."""
    mod_name, attr = _split_spec(target)
    allowed = allowed_modules()
    if not any(mod_name == a or mod_name.startswith(a + ".") for a in allowed):
        raise SlimlabError(f"model 'module:{target}' would import and run {mod_name}'s code, which was not allowed: "
                           f"pass --allow-module {mod_name} (or set {ALLOW_ENV}={mod_name}; in Python, "
                           f"slimlab.api.allow_module({mod_name!r})) if you trust it")
    return _import_attr(mod_name, attr)


def builder_takes(name: str, *args: str) -> bool:
    """Whether the constructor behind ``name`` accepts every keyword of ``args`` (a ``**kwargs`` catch-all
    counts): for a ``module:`` model, the user's own callable, imported (it must be allowed)."""
    fn = _user_callable(name[7:]) if name.startswith("module:") else get_entry(name).fn
    if not _has_signature(fn):
        return False
    params = inspect.signature(fn).parameters
    catch_all = name.startswith("module:") and any(p.kind == p.VAR_KEYWORD for p in params.values())
    return catch_all or all(a in params for a in args)  # tv:/timm: wrappers take **kwargs their models refuse


def _has_signature(fn) -> bool:
    try:
        inspect.signature(fn)
        return True
    except (TypeError, ValueError):
        return False


def _import_attr(mod_name: str, attr: str):
    import importlib

    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:  # as `python -m` does: a module beside the user is found
        sys.path.insert(0, cwd)
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as e:
        raise SlimlabError(f"cannot import {mod_name} for module:{mod_name}:{attr}: {e}") from None
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise SlimlabError(f"{mod_name} has no '{attr}' (module:{mod_name}:{attr})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise SlimlabError(f"module:{mod_name}:{attr} is not callable")
    return obj


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


def model_kwargs(kwargs: object, where: str = "model_kwargs") -> dict:
    """``kwargs`` as model arguments: a mapping of names (strings), ``num_classes`` not among them (it is its own
    option); one line otherwise, before any call."""
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise SlimlabError(f"{where} must map argument names to values, got {kwargs!r}"[:300])
    if "num_classes" in kwargs:
        raise SlimlabError(f"{where} must not set num_classes: the data sets it")
    return kwargs


def create_model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """Build a registered model. Unknown keyword arguments, and arguments out of range, raise :class:`SlimlabError`."""
    entry = get_entry(name)
    args = {**entry.defaults, **kwargs}
    own = name in _MODELS  # slimlab's ranges are for its own models: a user's or a library's constructor has its own
    check_model_args(name, {**args, "num_classes": num_classes} if own else {"num_classes": num_classes})
    params = inspect.signature(entry.fn).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        bad = sorted(set(args) - set(params))
        if bad:
            raise SlimlabError(f"model '{name}' does not take argument(s) {', '.join(bad)}")
    try:
        return entry.fn(num_classes=num_classes, **args)
    except SlimlabError:
        raise
    except (TypeError, ValueError, ZeroDivisionError, IndexError, KeyError, AssertionError) as e:
        raise SlimlabError(f"model '{name}' cannot be built with {args}: {type(e).__name__}: {e}") from None
    except RuntimeError as e:  # e.g. a layer with zero channels
        raise SlimlabError(f"model '{name}' cannot be built with {args}: {str(e).splitlines()[0][:200]}") from None
