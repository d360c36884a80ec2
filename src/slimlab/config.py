"""Validated run configuration: a dataclass, a YAML file and ``--set key=value`` overrides.

Every field has a type and a default; unknown keys and wrong types raise :class:`SlimlabError`
naming the key. The resolved config is written as ``config.yaml`` in every run directory, so
``slimlab train --config runs/X/config.yaml --out NEW`` reproduces a run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from slimlab.errors import SlimlabError
from slimlab.io import atomic_write_text


@dataclass
class TrainConfig:
    """Everything that defines a training run. Field comments are the CLI help."""

    # data
    data: str = "digits"  # digits | fake | cifar10 | cifar100 | imagefolder:PATH
    root: str = "~/.cache/slimlab/data"  # where cifar10/cifar100 live (torchvision layout)
    download: bool = False  # let torchvision download cifar10/cifar100 into --root
    val_fraction: float = 0.1  # stratified validation split of the training set
    clean_val: bool = False  # score validation against the true labels (PENCIL's official code validates on clean)
    train_subset: int = 0  # keep this many training images (stratified); 0 = all
    labels_per_class: int = 0  # keep K labelled training images per class; 0 = all
    labels_rule: str = "random"  # --labels-per-class: random (stratified, seeded) | first (first K per class)
    image_size: int = 0  # resize images to this size; 0 = native size
    augment: bool = True  # the data set's standard augmentation (crop, flip)
    # noisy labels
    noise: str = ""  # e.g. symmetric:0.4, asymmetric:0.4, pairflip:0.2; test labels stay clean
    noise_seed: int = 0
    noise_mode: str = "exact"  # exact (int(r*n) flips) | bernoulli (each label with probability r)
    noise_exclude_true: bool = False  # symmetric noise always picks another class
    noise_mapping: dict = field(default_factory=dict)  # asymmetric: {true class: noisy class}; default CIFAR-10/100's
    noise_convention: str = "blocks"  # CIFAR-100 asymmetric: blocks (next label in blocks of 5, published) | superclass
    clean_subset: int = 0  # fine-tune on K images per class with their true labels
    # model
    model: str = "resnet20"
    model_kwargs: dict = field(default_factory=dict)
    init: str = ""  # checkpoint whose matching weights initialise the model (its classifier if same classes)
    # objective
    loss: str = "ce"  # ce | gce | gce_trunc | sce | mae | nce_rce | bootstrap_soft | bootstrap_hard | forward | pencil
    loss_kwargs: dict = field(default_factory=dict)
    label_smoothing: float = 0.0
    # optimisation
    epochs: int = 30
    batch_size: int = 128  # global batch size (split over DDP ranks)
    epoch_size: int = 0  # samples per epoch, drawn with repetition from the training set; 0 = one pass
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True  # Nesterov momentum for SGD
    weight_decay: float = 5e-4
    decay_norm_and_bias: bool = False  # also decay BN weights and biases (the official PENCIL code does)
    clip_grad_norm: float = 0.0  # clip the gradient norm to this; 0 = off (the NCE+RCE reference code: 5)
    schedule: str = "cosine"  # cosine | step | constant | pencil (PENCIL's official: lr, then lr*10/3 /10 per third)
    milestones: list = field(default_factory=lambda: [0.5, 0.75])  # step: epochs, or fractions < 1
    gamma: float = 0.1  # step: lr factor at each milestone
    warmup_epochs: float = 0.0
    # execution
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast for training on CUDA and on CPUs with native bf16 (AMX/AVX512-BF16)
    channels_last: bool = True  # channels-last memory format (CPU and CUDA)
    compile: bool = False  # torch.compile the model
    sync_bn: bool = False  # SyncBatchNorm under DDP
    threads: int = 0  # torch CPU threads; 0 = torch's default
    seed: int = 0
    eval_every: int = 1  # validate every N epochs (and at the end); 0 = every epoch
    stop_after: int = 0  # stop once this many epochs are done (resume later with --resume); 0 = run to the end
    track_test: bool = False  # also evaluate the test set whenever validation runs (every eval_every epochs)
    progress: str = "auto"  # auto | bar | log | none
    log: list = field(default_factory=list)  # also log every epoch to: tensorboard (RUN_DIR/tensorboard/); repeatable
    diverge_factor: float = 10.0  # stop when an epoch's training loss exceeds this multiple of the first's; 0 = never
    out: str = ""  # run directory; default runs/<data>-<model>[-N]
    overwrite: bool = False  # start over in a non-empty --out (deletes the files of the run found there)

    # the stated range of every numeric option, checked in one place (config.check_ranges) before anything runs
    RANGES = {"val_fraction": "[0, 1)", "train_subset": ">= 0", "labels_per_class": ">= 0",
              "image_size": "0 or [8, 4096]", "clean_subset": ">= 0", "label_smoothing": "[0, 1)",
              "epochs": "[1, 100000]", "batch_size": "[1, 1000000]",
              "epoch_size": ">= 0", "lr": "> 0", "momentum": "[0, 1)",
              "weight_decay": "[0, 1]",
              "clip_grad_norm": ">= 0", "milestones": ">= 0", "gamma": "(0, 1]", "warmup_epochs": ">= 0",
              "threads": "[0, 4096]", "eval_every": ">= 0", "stop_after": ">= 0", "diverge_factor": "0 or >= 1",
              "noise_seed": "[0, 4294967295]", "seed": "[0, 4294967295]"}
    CHOICES = {"optimizer": ("sgd", "adamw"), "schedule": ("cosine", "step", "constant", "pencil"),
               "noise_mode": ("exact", "bernoulli"), "labels_rule": ("random", "first"),
               "noise_convention": ("blocks", "superclass"),
               "progress": ("auto", "bar", "log", "none")}
    APPEND = ("log",)


_RANGE = re.compile(r"^(?:(?P<op>>=|>|<=|<)\s*(?P<v>\S+)"
                    r"|(?P<lo_b>[\[(])\s*(?P<lo>[^,]+),\s*(?P<hi>[^\])]+)(?P<hi_b>[\])]))$")


def in_range(value: float, spec: str) -> bool:
    """Whether ``value`` lies in ``spec``: ``>= 0``, ``> 0``, ``[0, 1)``, ``(0, inf]``, or alternatives joined by
    ``or`` (``0 or [8, 4096]``); a bare number is that exact value."""
    for part in spec.split(" or "):
        part = part.strip()
        m = _RANGE.match(part)
        if m is None:
            if value == float(part):
                return True
            continue
        if m["op"]:
            v = float(m["v"])
            ok = {">=": value >= v, ">": value > v, "<=": value <= v, "<": value < v}[m["op"]]
        else:
            lo, hi = float(m["lo"]), float(m["hi"])
            ok = (value >= lo if m["lo_b"] == "[" else value > lo) and (value <= hi if m["hi_b"] == "]" else value < hi)
        if ok:
            return True
    return False


def check_ranges(cfg: Any, source: str = "config") -> Any:
    """Raise a one-line :class:`SlimlabError` for the first option outside its stated range or choices.

    A config class states them as ``RANGES`` (field -> spec of :func:`in_range`; a list field's elements are
    checked) and ``CHOICES`` (field -> allowed values)."""
    for name, spec in getattr(type(cfg), "RANGES", {}).items():
        value = getattr(cfg, name)
        if value is None:  # an optional option left unset
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SlimlabError(f"{source}: '{name}' must be a number, got {v!r}")
            if not math.isfinite(v) or not in_range(v, spec):
                raise SlimlabError(f"{source}: '{name}' must be {_say(spec)}, got {v!r}")
    for name, allowed in getattr(type(cfg), "CHOICES", {}).items():
        value = getattr(cfg, name)
        if value not in allowed and not (value == "" and "" in allowed):
            raise SlimlabError(f"{source}: '{name}' must be one of {', '.join(map(str, allowed))}, got {value!r}")
    device = getattr(cfg, "device", None)
    if isinstance(device, str) and not _DEVICE.match(device):
        raise SlimlabError(f"{source}: 'device' must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
    return cfg


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _say(spec: str) -> str:
    return spec if spec[0] in "<>" else f"in {spec}"


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, tp)


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def from_dict(cls: type, raw: dict[str, Any], source: str = "config") -> Any:
    """Build dataclass ``cls`` from ``raw``, rejecting unknown keys and wrong types."""
    if not isinstance(raw, dict):
        raise SlimlabError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    types_ = field_types(cls)
    raw = _apply_aliases(cls, dict(raw), source)
    unknown = sorted(set(raw) - set(types_))
    if unknown:
        raise SlimlabError(f"{source}: unknown key(s) {', '.join(unknown)}")
    for key, value in raw.items():
        if not _type_ok(value, types_[key]):
            want = getattr(types_[key], "__name__", str(types_[key]))
            raise SlimlabError(f"{source}: '{key}' must be {want}, got {value!r}")
        if types_[key] is float:
            raw[key] = float(value)
        if key == "out" and isinstance(value, str):
            raw[key] = os.path.expanduser(value)  # `out: ~/x` in YAML means the home directory, as on a shell
    return check_ranges(cls(**raw), source)


def _apply_aliases(cls: type, raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Old key names a config still accepts (``ratio`` for ``keep_ratio``), declared as ``cls.ALIASES``."""
    for old, new in getattr(cls, "ALIASES", {}).items():
        if old in raw:
            if new in raw:
                raise SlimlabError(f"{source}: give '{new}' or its old name '{old}', not both")
            raw[new] = raw.pop(old)
    return raw


def parse_set(items: list[str]) -> dict[str, Any]:
    """Parse ``key=value`` overrides; values are YAML scalars (``epochs=40``, ``nesterov=false``)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SlimlabError(f"--set {item!r}: expected key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = parse_yaml(value, f"--set {key.strip()}") if value != "" else ""
        except SlimlabError as e:
            if "not valid YAML" not in str(e):
                raise  # twice-given keys, bombs: a plain string would hide them
            out[key.strip()] = value
    return out


def read_json_object(path: str | Path, what: str = "") -> dict:
    """A JSON file that must hold an object (a mapping); one :class:`SlimlabError` line for anything else."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise SlimlabError(f"{what or p}: not valid JSON ({str(e).splitlines()[0][:120]})") from None
    except OSError as e:
        raise SlimlabError(f"{what or p}: cannot be read ({e.strerror or e})") from None
    if not isinstance(obj, dict):
        raise SlimlabError(f"{what or p}: expected a JSON object, got {type(obj).__name__}")
    return obj


MAX_YAML_DEPTH = 64  # nesting levels a config or recipe may have
MAX_YAML_NODES = 100_000  # values after aliases are expanded (a 300-byte alias bomb expands to billions)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit, checked while composing (before Python recursion runs out)."""

    def compose_node(self, parent, index):  # noqa: D401
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise SlimlabError(f"nested more than {MAX_YAML_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def flatten_mapping(self, node):
        """A key written twice in one mapping is an error (PyYAML keeps the last silently, so ``lr: 0.1`` above a
        forgotten ``lr: 0.5`` would train at 0.5). Checked where PyYAML expands merges, before it first rewrites the
        node (a merged node is flattened into its own and each user's value): keys a merge (``<<: *base``) brings
        in may still be overridden."""
        checked = self.__dict__.setdefault("_written_once", set())
        if id(node) not in checked:
            checked.add(id(node))
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key, line = self.construct_object(key_node), key_node.start_mark.line + 1
                if key in seen:
                    raise SlimlabError(f"'{key}' is given twice (lines {seen[key]} and {line})")
                seen[key] = line
        super().flatten_mapping(node)


def _count_nodes(obj: Any, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise SlimlabError(f"more than {MAX_YAML_NODES:,} values once its aliases are expanded")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _count_nodes(k, budget)
            _count_nodes(v, budget)
    elif isinstance(obj, list):
        for v in obj:
            _count_nodes(v, budget)


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> plain data, safely and within bounds (depth, expanded size); one line for any problem."""
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506  (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise SlimlabError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    except SlimlabError as e:
        raise SlimlabError(f"{where}: {e}") from None
    except RecursionError:
        raise SlimlabError(f"{where}: nested too deeply") from None
    try:
        _count_nodes(data, [MAX_YAML_NODES])
    except SlimlabError as e:
        raise SlimlabError(f"{where}: {e}") from None
    except RecursionError:
        raise SlimlabError(f"{where}: nested too deeply") from None
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise SlimlabError(f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SlimlabError(f"{p}: not UTF-8 text (a config or recipe is a UTF-8 YAML file)") from None
    data = parse_yaml(text, str(p)) or {}
    if not isinstance(data, dict):
        raise SlimlabError(f"{p}: expected a mapping at the top level")
    return data


def resolve(cls: type, config_file: str | None = None, overrides: dict[str, Any] | None = None,
            sets: list[str] | None = None) -> Any:
    """Defaults < YAML file < explicit overrides (CLI flags) < ``--set`` items."""
    raw: dict[str, Any] = {}
    src = str(config_file or "config")
    if config_file:  # old names are mapped per source, so a flag still overrides a file's old-named key
        file = load_yaml(config_file)
        if _written_by_a_run(config_file):  # reusing a run's options: its directory stays its own
            file = {k: v for k, v in file.items() if k not in ("out", "overwrite")}
        raw.update(_apply_aliases(cls, file, src))
    raw.update(_apply_aliases(cls, dict(overrides or {}), src))
    raw.update(_apply_aliases(cls, parse_set(sets or []), src))
    return from_dict(cls, raw, source=str(config_file or "config"))


def _written_by_a_run(path: str | Path) -> bool:
    """Whether ``path`` is a run's config.yaml (its first line is the run's header, ``# slimlab run ID``)."""
    try:
        with open(Path(path).expanduser()) as f:
            return f.readline().startswith("# slimlab run ")
    except OSError:
        return False


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any, path: str | Path, header: str = "") -> None:
    """Write ``cfg`` as YAML atomically; ``header`` (YAML comment lines) goes first."""
    atomic_write_text(path, header + yaml.safe_dump(to_dict(cfg), sort_keys=False))
