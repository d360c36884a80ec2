"""Prune any ``nn.Module`` from Python, inside your own training loop.

    pruned, report = prune_module(model, my_loader, method="thinet", target_macs=0.5, round_to=8)

The model is pruned in place (and returned): its convolutions really lose channels, so it is smaller
and faster, and it stays an instance of your class. Calibration images come from any iterable of
batches, such as your ``DataLoader`` (a tensor, an ``(images, labels)`` pair, or a dict with an
``image``/``images``/``input``/``x``/``pixel_values`` entry per batch), already normalised as your
model expects. Afterwards, every BatchNorm layer's statistics are re-estimated on the same images
(:mod:`slimlab.prune.bn_recalibration`). Save the result with
:func:`slimlab.models.io.save_pruned` (safetensors, no code) and load it back with ``load_pruned``.

Conventions are Torch-Pruning's where it has one: ``prune_ratio`` is the fraction of channels
*removed* (``keep_ratio`` = 1 - ``prune_ratio``, ThiNet's compression rate), ``round_to`` makes
every kept count a multiple of N, ``ignored_layers`` (modules or their names) keep their output
channels. The command line's names are accepted too (``ignore_layers``, ``thinet_variant``, ...).

Pruning replaces the pruned layers' parameters with smaller tensors: an optimizer (or learning-rate
scheduler, EMA, GradScaler) built before it still holds the old ones and would silently stop training
them. Build it after pruning, and inside ``between_layers`` from the model it is given.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.profile import count_macs, count_params
from slimlab.prune.bn_recalibration import IMAGE_KEYS, batch_images, batches_of, recalibrate_bn
from slimlab.prune.config import resolve_keep_ratio
from slimlab.prune.pruner import Calibration, prune_model, ratio_for_macs

# the command line's (and PruneConfig's) names of prune_module's options
_ALIASES = {"ignore_layers": "ignored_layers", "thinet_variant": "variant", "thinet_refine": "refine",
            "thinet_target": "target", "samples_per_image": "per_image"}
_CRITERION_OPTIONS = ("variant", "refine", "per_image", "samples_per_weight", "target", "apoz_at")
SAMPLES_PER_WEIGHT = 10.0  # ThiNet samples per image until Eq. 6 sees this many per weight (as `slimlab prune`)
_LABEL_KEYS = ("target", "targets", "label", "labels", "y")


@dataclass
class PruneReport:
    """What :func:`prune_module` did: channels per layer [before, kept], MACs and parameters before and after."""

    method: str
    keep_ratio: float
    channels: dict[str, list[int]]
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    seconds: float
    input_size: tuple[int, int]
    bn_layers_recalibrated: int = 0
    calibration_images: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def macs_reduction(self) -> float:
        return self.macs_before / max(self.macs_after, 1)

    def __str__(self) -> str:
        return (f"{self.method}, keep ratio {self.keep_ratio:.3f} on {len(self.channels)} layers: MACs "
                f"{self.macs_before / 1e6:.1f}M -> {self.macs_after / 1e6:.1f}M ({self.macs_reduction:.2f}x fewer), "
                f"params {self.params_before / 1e6:.3f}M -> {self.params_after / 1e6:.3f}M, "
                f"{self.calibration_images} calibration images, {self.seconds:.1f} s")


def images_from(batches: Iterable, max_images: int) -> torch.Tensor:
    """Up to ``max_images`` input images [N, C, H, W] from an iterable of batches."""
    return labelled_from(batches, max_images)[0]


def labelled_from(batches: Iterable, max_images: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Up to ``max_images`` input images [N, C, H, W] and their labels (None unless every batch has them). One
    image tensor [N, C, H, W] stands for one batch."""
    if isinstance(batches, torch.Tensor) and batches.dim() == 4:
        batches = [batches]
    got, labels, n = [], [], 0
    for b in batches:
        x, y = batch_images(b), None
        if isinstance(b, (tuple, list)):
            y = b[1] if len(b) > 1 else None
        elif isinstance(b, dict):
            y = next((b[k] for k in _LABEL_KEYS if k in b), None)
        if x is None or x.dim() != 4:
            keys = f" with keys {', '.join(map(str, list(b)[:8]))}" if isinstance(b, dict) else ""
            raise SlimlabError("calibration data must yield batches: image tensors [N, C, H, W], (images, labels) "
                               f"pairs, or dicts with one of {', '.join(IMAGE_KEYS)}; got a batch of "
                               f"{type(b).__name__}{keys} (a DataLoader, or a list such as [images] for one tensor)")
        if not x.is_floating_point():
            raise SlimlabError(f"calibration images are {str(x.dtype).replace('torch.', '')}: give them as the model "
                               "sees them in training (float, normalised as your transform does); raw 0-255 pixels "
                               "would re-estimate every BatchNorm on the wrong scale")
        got.append(x.detach()[: max_images - n])
        labels.append(y[: len(got[-1])] if isinstance(y, torch.Tensor) and y.dim() == 1 else None)
        n += len(got[-1])
        if n >= max_images:
            break
    if not got:
        raise SlimlabError("no calibration images: the iterable of batches was empty")
    y_all = None if any(y is None for y in labels) else torch.cat(labels).long()
    return torch.cat(got).float(), y_all


def prune_module(model: nn.Module, calibration: Iterable, *, method: str = "thinet", keep_ratio: float | None = None,
                 prune_ratio: float | None = None, target_macs: float | None = None, round_to: int = 1,
                 ignored_layers: Iterable[nn.Module | str] = (), layers: list[str] | None = None,
                 mode: str = "layerwise", max_images: int = 512, recalibrate: bool = True, seed: int = 0,
                 between_layers: Callable[[nn.Module], None] | None = None, allocation: str = "uniform",
                 allocation_floor: float = 0.1, sensitivity: dict | str | None = None,
                 state_file: str | None = None, progress: Callable[[str], None] | None = None,
                 **criterion_options) -> tuple[nn.Module, PruneReport]:
    """Prune ``model`` in place; return it and a :class:`PruneReport`.

    ``calibration``: a DataLoader or any iterable of batches (image tensors, (images, labels) pairs or dicts), or
    one image tensor [N, C, H, W]; up to ``max_images`` images are read.

    ``method``: thinet (default), weight_sum (alias l1), apoz, random. The amount: ``keep_ratio`` (kept),
    ``prune_ratio`` (removed), or ``target_macs`` (at most this fraction of the MACs: the largest uniform
    keep ratio that reaches it). ``between_layers(model)`` runs after each pruned layer (layerwise mode):
    ThiNet fine-tunes there; pass your own training steps. ``criterion_options``: ``variant`` ("iccv",
    "tpami"), ``refine``, ``per_image``, ``samples_per_weight`` (10, as on the command line: ThiNet samples more
    positions per image until its least squares see 10 per weight; 0 keeps ``per_image``), ``target``, ``apoz_at``.

    ``allocation``: ``uniform`` (one ratio), ``global`` or ``sensitivity`` (per-layer counts at the same MACs:
    ``target_macs``, or those of the uniform ratio; :mod:`slimlab.prune.allocation`). ``sensitivity`` reads a
    profile (a dict or a JSON file) or measures one on the calibration batches, which must then carry labels
    (measured on the images the model trained on, it understates each layer's drop: pass a held-out loader).
    With ``recalibrate``, BatchNorm statistics are re-estimated on the calibration images: pass them augmented
    as in training (un-augmented ones cost the unpruned zoo ResNet-20 3.2 points).

    ``state_file`` makes a layerwise prune resumable: after each layer its progress is written there, and a call
    that finds the file continues after the last finished layer with the same result (a file written for other
    weights, calibration images or options is refused in one line; it is removed when the prune finishes); give
    ``between_layers`` ``state_dict()``/``load_state_dict()`` if it carries state (a data iterator's position).
    ``progress`` (e.g. ``print``) receives one line per pruned layer."""
    t0 = time.time()
    ignored_layers, criterion_options = _options(ignored_layers, criterion_options)
    _check_model(model)
    if round_to < 1:
        raise SlimlabError(f"round_to must be >= 1, got {round_to}")
    if state_file and mode != "layerwise":
        raise SlimlabError(f"state_file resumes a layer-by-layer prune; mode={mode!r} prunes every layer at once, with "
                           "nothing to resume: leave state_file out")
    images, labels = labelled_from(calibration, max_images)
    size, chans = (int(images.shape[-2]), int(images.shape[-1])), int(images.shape[1])
    names = {id(m): n for n, m in model.named_modules()}
    if isinstance(ignored_layers, (str, nn.Module)):  # one name or module, not its characters or children
        ignored_layers = [ignored_layers]
    ignored = [m if isinstance(m, str) else names.get(id(m)) for m in ignored_layers]
    if None in ignored:
        raise SlimlabError("ignored_layers: a module that is not part of the model")
    before = (_macs_on(model, size, chans), count_params(model))
    ratio = _uniform_ratio(model, keep_ratio, prune_ratio, target_macs, size, chans, layers, round_to, ignored)
    dev = next(model.parameters()).device
    calib = Calibration(images.to(dev))
    keep, extra = None, {}
    if allocation != "uniform":
        keep, extra = _allocate(model, method, allocation, calib, labels, ratio, target_macs, size, chans, layers,
                                ignored, round_to, allocation_floor, sensitivity, seed, criterion_options)
        ratio = sum(keep.values()) / sum(extra.pop("channels").values())
    key = _state_key(model, images, method, ratio, seed, keep, criterion_options) if state_file else None
    info = prune_model(model, method, ratio, calib, input_size=size, layers=layers, mode=mode, seed=seed,
                       between_layers=between_layers, round_to=round_to, ignored=ignored, in_chans=chans, keep=keep,
                       state_file=state_file, state_key=key, progress=progress,
                       state_restart=f"delete {state_file} to prune every layer again",
                       state_foreign="give state_file a path of its own", **criterion_options)
    if state_file:
        Path(state_file).unlink(missing_ok=True)  # finished: a later call starts afresh
    n_bn = recalibrate_bn(model, batches_of(images)) if recalibrate else 0
    if info["channels"] and all(kept == was for was, kept in info["channels"].values()):
        warnings.warn(f"prune_module removed no channel: every layer kept its width (round_to={round_to} on layers "
                      f"of {min(w for w, _ in info['channels'].values())}+ channels, or a keep ratio near 1)",
                      stacklevel=2)
    return model, PruneReport(method, ratio, info["channels"], before[0], count_macs(model, size, in_chans=chans),
                              before[1], count_params(model), time.time() - t0, size, n_bn, len(images),
                              {"allocation": extra} if extra else {})


def _macs_on(model: nn.Module, size: tuple[int, int], chans: int) -> int:
    """The model's MACs on the calibration images' shape; a model that cannot run on them is one line."""
    try:
        return count_macs(model, size, in_chans=chans)
    except Exception as e:  # noqa: BLE001 - the user's model on the user's images: its own error, in one line
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise SlimlabError(f"{type(model).__name__} cannot run on the calibration images ({chans} channels, "
                           f"{size[0]}x{size[1]}): {first}") from None


def _uniform_ratio(model: nn.Module, keep_ratio: float | None, prune_ratio: float | None, target_macs: float | None,
                   size: tuple[int, int], chans: int, layers, round_to: int, ignored: list) -> float:
    """The keep ratio asked for, or the largest uniform one that meets ``target_macs`` (bisection)."""
    ratio = resolve_keep_ratio(keep_ratio, prune_ratio)
    if target_macs is None:
        return ratio
    if keep_ratio is not None or prune_ratio is not None:
        raise SlimlabError("give target_macs or a ratio, not both")
    if not 0 < target_macs <= 1:
        raise SlimlabError(f"target_macs must be in (0, 1], got {target_macs}")
    return ratio_for_macs(model, target_macs, size, layers, round_to=round_to, ignored=ignored, in_chans=chans)


def _state_key(model: nn.Module, images: torch.Tensor, method: str, ratio: float, seed: int, keep: dict | None,
               options: dict) -> dict:
    """What a progress file must have been written for: these weights, calibration images and options."""
    def digest(named: Iterable[tuple[str, torch.Tensor]]) -> str:
        h = hashlib.sha256()
        for name, t in named:
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    return {"weights": digest(model.state_dict().items()), "images": digest([("images", images)]),
            "method": str(method), "ratio": ratio, "seed": seed, "keep": dict(keep or {}),
            "options": {k: str(v) for k, v in sorted(options.items())}}


def _options(ignored_layers: Iterable, options: dict) -> tuple[Iterable, dict]:
    """``options`` under their Python names (the command line's accepted), and unknown ones refused in one line."""
    out = {}
    for key, value in options.items():
        name = _ALIASES.get(key, key)
        if name == "ignored_layers":
            if ignored_layers:
                raise SlimlabError("give ignored_layers or ignore_layers, not both")
            ignored_layers = value
        elif name in _CRITERION_OPTIONS:
            out[name] = value
        else:
            raise SlimlabError(f"prune_module: unknown option {key!r} (criterion options: "
                               f"{', '.join(_CRITERION_OPTIONS)})")
    out.setdefault("samples_per_weight", SAMPLES_PER_WEIGHT)  # the command line's default
    return ignored_layers, out


def _check_model(model: nn.Module) -> None:
    p = next(model.parameters(), None)
    if p is None:
        raise SlimlabError("prune_module: the model has no parameters")
    if p.dtype != torch.float32:
        raise SlimlabError(f"prune_module needs a float32 model, this one is {p.dtype}: prune model.float() and "
                           "convert it back afterwards (the least squares and the statistics need float32)")


def _allocate(model: nn.Module, method: str, mode: str, calib: Calibration, labels: torch.Tensor | None,
              ratio: float, target_macs: float | None, size: tuple[int, int], chans: int, layers: list[str] | None,
              ignored: list, round_to: int, floor: float, sensitivity: dict | str | None, seed: int,
              options: dict) -> tuple[dict[str, int], dict]:
    """Per-layer kept counts for ``allocation`` global / sensitivity, and what was decided."""
    from slimlab.config import read_json_object
    from slimlab.prune.allocation import Shape, allocate, measure_sensitivity, read_profile
    from slimlab.prune.criterion import CriterionOptions, build_criterion
    opts = {k: v for k, v in options.items() if k in ("variant", "per_image", "refine", "samples_per_weight",
                                                       "apoz_at")}
    crit = build_criterion(method, CriterionOptions(**opts))
    shape = Shape(model, size, layers, ignored, chans, round_to)
    target = target_macs or shape.uniform_macs(ratio)
    profile = None
    if mode == "sensitivity":
        if isinstance(sensitivity, str):
            sensitivity = read_json_object(sensitivity)
        if sensitivity is None:
            if labels is None:
                raise SlimlabError("allocation='sensitivity' measures each layer's accuracy drop: give calibration "
                                   "batches with labels, or a profile (sensitivity=...)")
            sensitivity = measure_sensitivity(model, crit, calib, calib.images, labels, shape, seed=seed)
        profile = read_profile(sensitivity, "sensitivity")
    counts, info = allocate(mode, model, crit, calib, shape, target, floor=floor, profile=profile, seed=seed)
    return counts, dict(info, channels=shape.channels, profile=sensitivity)
