"""Rebuild a model from a checkpoint, pruned models included.

A checkpoint stores the model's registry name and arguments. A pruned model differs from its
registry architecture only in channel counts, and those are in the state dict's tensor shapes:
``resize_to_state_dict`` builds the registry model and resizes every conv, norm and linear layer
to the stored shapes before loading, so loading a pruned checkpoint needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.models.registry import create_model, model_kwargs


def resize_to_state_dict(model: nn.Module, sd: dict[str, torch.Tensor]) -> nn.Module:
    """Resize ``model`` in place to the tensor shapes of ``sd`` (a pruned model's state dict).

    Every parameter or buffer whose shape differs is replaced by an uninitialised tensor of the stored shape;
    then the attributes a forward pass reads are made to agree: a conv's channels and groups (depthwise
    convs stay depthwise), a linear layer's features, a norm layer's feature count or normalised shape."""
    for name, m in model.named_modules():
        changed = False
        for pname, t in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False)):
            key = f"{name}.{pname}" if name else pname
            new = sd.get(key)
            if t is None or new is None or new.shape == t.shape:
                continue
            if pname == "weight" and isinstance(m, nn.Conv2d):
                _resize_conv(m, new)
            empty = torch.empty(new.shape, dtype=t.dtype, device=t.device)
            if isinstance(t, nn.Parameter):
                setattr(m, pname, nn.Parameter(empty, requires_grad=t.requires_grad))
            else:
                m.register_buffer(pname, empty)
            changed = True
        if changed:
            _fix_attributes(m)
    return model


def _resize_conv(m: nn.Conv2d, w: torch.Tensor) -> None:
    cout, cin_g = w.shape[:2]
    groups = cout if (m.groups > 1 and m.groups == m.in_channels and cin_g == 1) else m.groups
    m.in_channels, m.out_channels, m.groups = cin_g * groups, cout, groups


def _fix_attributes(m: nn.Module) -> None:
    w = getattr(m, "weight", None)
    if isinstance(m, nn.Linear):
        m.out_features, m.in_features = m.weight.shape
    elif isinstance(m, nn.modules.batchnorm._NormBase):
        m.num_features = (w if w is not None else m.running_mean).shape[0]
    elif isinstance(m, nn.GroupNorm) and w is not None:
        m.num_channels = w.shape[0]
    elif isinstance(m, nn.LayerNorm) and w is not None:
        m.normalized_shape = tuple(w.shape)


def _offline(kwargs: dict) -> dict:
    """Model arguments with every request to load weights from elsewhere removed (a download, or timm's
    ``checkpoint_path``/``pretrained_cfg_overlay`` naming a file): weights come from the checkpoint alone."""
    out = {k: v for k, v in kwargs.items()
           if k not in ("pretrained", "weights", "checkpoint_path", "pretrained_cfg_overlay", "pretrained_cfg")}
    for k, v in out.items():
        if isinstance(v, dict):
            out[k] = _offline(v)
    return out


def model_from_checkpoint(ckpt: dict, load_weights: bool = True) -> nn.Module:
    """Build the checkpoint's model (registry name + arguments, resized if pruned) and load its weights.

    The metadata is a stranger's until checked: the model is first built on the ``meta`` device (no memory),
    and refused unless its size matches the state dict's; a download request in its arguments is dropped."""
    where = f"checkpoint {ckpt.get('path', '')}".strip()
    try:
        name, nc = ckpt["model_name"], ckpt["num_classes"]
        kwargs = _offline(dict(model_kwargs(ckpt.get("model_kwargs") or {}, f"{where}: model_kwargs")))
    except KeyError as e:
        raise SlimlabError(f"{where} lacks '{e.args[0]}'") from None
    sd = ckpt["state_dict"]
    resize = ckpt.get("pruned") or ckpt.get("resize_on_load")  # pruned, or a user's object of unknown arguments
    _check_size(name, nc, kwargs, sd, 20 if resize else 2, where)  # pruned: smaller than its registry's
    model = create_model(name, nc, **kwargs)
    if resize:
        resize_to_state_dict(model, sd)
    if load_weights:
        load_state_checked(model, sd, ckpt.get("path", "checkpoint"))
    return model


def _check_size(name: str, nc: int, kwargs: dict, sd: dict, slack: float, where: str) -> None:
    """Refuse model arguments that describe far more weights than the state dict holds, counted on the ``meta``
    device (no memory). A user's own constructor (``module:``, allowed by them) that cannot run there (one that
    turns a tensor into Python numbers, as stochastic-depth rates often are) is built without the check."""
    try:
        with torch.device("meta"):
            shell = create_model(name, nc, **kwargs)
    except SlimlabError:
        if name.startswith("module:"):
            return
        raise
    n_model = sum(t.numel() for t in shell.state_dict().values())
    n_sd = sum(t.numel() for t in sd.values())
    if n_model > slack * n_sd + 10_000_000:
        raise SlimlabError(f"{where}: its model arguments describe {n_model:,} weights but its state_dict holds "
                           f"{n_sd:,}: refused")


def load_state_checked(model: nn.Module, sd: dict, source: str = "checkpoint") -> None:
    """``load_state_dict(strict=True)``, with one clear line when the architecture does not match."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shape = [k for k in own if k in sd and own[k].shape != sd[k].shape]
    if missing or unexpected or shape:
        what = (f"{len(missing)} missing, {len(unexpected)} unexpected, {len(shape)} mis-shaped tensors"
                f" (first: {(missing + unexpected + shape)[0]})")
        raise SlimlabError(f"{source} does not match the model's architecture: {what}")
    if getattr(sd, "_metadata", None) is None and getattr(own, "_metadata", None) is not None:
        # a state read from safetensors has no module versions, which some modules' loaders read (torchvision's
        # MNASNet refuses "version None"): the model's own versions are the ones the tensors were saved from
        sd = type(own)(sd)  # an OrderedDict, which carries _metadata
        sd._metadata = own._metadata
    model.load_state_dict(sd)


def head_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the model's classifier: its last ``nn.Linear``."""
    last = None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            last = name
    if last is None:
        return set()
    return {f"{last}.{p}" if last else p for p, _ in model.get_submodule(last).named_parameters(recurse=False)}


def match_report(model: nn.Module, sd: dict, skip_head: bool = False) -> dict:
    """Which tensors of ``sd`` fit ``model`` by name and shape: {"copied": [...], "shape_mismatch": [...],
    "not_in_model": [...], "head_skipped": [...], "not_in_file": [...]} (names; shapes where they differ)."""
    own = model.state_dict()
    skip = head_keys(model) if skip_head else set()
    rep: dict[str, list] = {"copied": [], "shape_mismatch": [], "not_in_model": [], "head_skipped": [],
                            "not_in_file": [k for k in own if k not in sd]}
    for k, v in sd.items():
        if k not in own:
            rep["not_in_model"].append(k)
        elif k in skip:
            rep["head_skipped"].append(k)
        elif own[k].shape != v.shape:
            rep["shape_mismatch"].append(f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}")
        else:
            rep["copied"].append(k)
    return rep


def load_matching(model: nn.Module, sd: dict, skip_head: bool = False) -> tuple[int, int]:
    """Copy every tensor of ``sd`` whose name and shape match (for ``--init``); return (copied, total).

    ``skip_head`` leaves the classifier (the last linear layer) as initialised: for a model whose classes
    differ from the checkpoint's, even when their number is the same."""
    rep = match_report(model, sd, skip_head)
    model.load_state_dict({k: sd[k] for k in rep["copied"]}, strict=False)
    return len(rep["copied"]), len(model.state_dict())


def summarize_match(rep: dict) -> str:
    """One line of a :func:`match_report`: counts, and the first name of each kind skipped."""
    parts = [f"{len(rep['copied'])} tensors copied"]
    for key, what in (("shape_mismatch", "of another shape"), ("not_in_model", "not in the model"),
                      ("head_skipped", "of the classifier (other classes)"), ("not_in_file", "left as initialised")):
        if rep[key]:
            parts.append(f"{len(rep[key])} {what} (first: {rep[key][0]})")
    return "; ".join(parts)


# --- plain weight files (a torchvision or timm .pth, a .safetensors) -----------------------------------------
_NESTED = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema", "net", "module")


def plain_state_dict(obj, where: str) -> dict[str, torch.Tensor]:
    """The tensors of a loaded plain weight file: a mapping of names to tensors, possibly nested under one of
    the usual keys (``state_dict``, ``model``, ...); a ``module.`` prefix (DistributedDataParallel) is dropped."""
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        inner = next((obj[k] for k in _NESTED if isinstance(obj.get(k), dict)), None)
        if inner is not None:
            obj = inner
    if not isinstance(obj, dict) or not obj:
        raise SlimlabError(f"{where} holds no state dict (a mapping of tensor names to tensors)")
    sd = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not sd:
        raise SlimlabError(f"{where} holds no tensors")
    if all(k.startswith("module.") for k in sd):
        sd = {k[7:]: v for k, v in sd.items()}
    return sd


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a ``.safetensors`` file; one line for a file that is not one."""
    try:
        from safetensors import safe_open
    except ImportError:
        raise SlimlabError("reading .safetensors needs the safetensors package (pip install safetensors)") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except Exception as e:  # SafetensorError, a truncated header, a directory
        raise SlimlabError(f"cannot read {path} as safetensors: {str(e).splitlines()[0][:200]}") from None


# --- pruned models of any class, saved without code ----------------------------------------------------------
PRUNED_FORMAT = "slimlab-pruned-1"


def save_pruned(model: nn.Module, path: str | Path, *, model_name: str = "", model_kwargs: dict | None = None,
                num_classes: int | None = None, extra: dict | None = None) -> Path:
    """Save a (pruned) model as ``.safetensors``: its tensors, whose shapes are its pruned architecture, and in the
    header, as JSON, the format name and how to rebuild the unpruned model (``model_name``, e.g. ``timm:resnet18``
    or ``resnet56``; its arguments; ``num_classes``). No code and no pickle: :func:`load_pruned` reads it back.
    An existing file at ``path`` is replaced (atomically), as ``torch.save`` replaces one."""
    import json

    from safetensors.torch import save

    from slimlab.io import atomic_write_bytes

    path = Path(path)
    if path.suffix != ".safetensors":
        raise SlimlabError(f"{path}: a pruned model is saved as .safetensors")
    if path.is_dir():
        raise SlimlabError(f"{path} is a directory: give save_pruned a file name")
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module  # the keys of the model itself, without "module." (load_pruned builds that model)
    model_kwargs = dict(model_kwargs or {})
    if "num_classes" in model_kwargs:  # given where create_model takes it positionally: one place in the file
        given = model_kwargs.pop("num_classes")
        if num_classes is not None and given != num_classes:
            raise SlimlabError(f"save_pruned: num_classes={num_classes} but model_kwargs says {given}")
        num_classes = given
    if num_classes is None:
        num_classes = getattr(model, "num_classes", None)  # timm's models say it
        heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
        num_classes = num_classes if isinstance(num_classes, int) else heads[-1].out_features if heads else 0
    if model_name and not (isinstance(num_classes, int) and num_classes >= 1):
        raise SlimlabError(f"save_pruned: {model_name} has no linear head to read its class count from: pass "
                           "num_classes=")
    meta = {"format": PRUNED_FORMAT, "model_name": model_name, "model_kwargs": json.dumps(model_kwargs),
            "num_classes": str(num_classes), "extra": json.dumps(extra or {})}
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    shared = {}
    for k, v in sd.items():  # safetensors refuses tensors that share memory
        ptr = v.untyped_storage().data_ptr() if v.numel() else None
        sd[k] = v.clone() if ptr is not None and ptr in shared else v
        if ptr is not None:
            shared[ptr] = k
    atomic_write_bytes(path, save(sd, metadata=meta))
    return path


def _same_head(model: nn.Module, sd: dict, path: str | Path) -> None:
    """Pruning never changes the classifier's outputs: a given model whose head has another size is another
    model (resizing it to the file would hide that)."""
    heads = sorted(head_keys(model))
    w = next((k for k in heads if k.endswith("weight")), None)
    if w and w in sd and sd[w].shape[0] != model.state_dict()[w].shape[0]:
        raise SlimlabError(f"{path}: its classifier has {sd[w].shape[0]} outputs, the model given has "
                           f"{model.state_dict()[w].shape[0]}: build the model with the file's number of classes")


def load_pruned(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """A model saved by :func:`save_pruned`: ``model`` (an unpruned instance of the same class, built by your own
    code) resized to the stored shapes and loaded; or, without ``model``, rebuilt from the stored name
    (a registry name, ``tv:``, ``timm:``; ``module:`` only if that module is allowed)."""
    import json

    sd, meta = read_safetensors(path)
    if meta.get("format") != PRUNED_FORMAT:
        raise SlimlabError(f"{path} is a .safetensors file but not a model saved by slimlab's save_pruned "
                           "(load plain weights with --init or load_matching)")
    if model is None:
        if not meta.get("model_name"):
            raise SlimlabError(f"{path} does not say how to build its model: pass the unpruned model to load_pruned")
        try:
            kwargs, nc = json.loads(meta.get("model_kwargs") or "{}"), int(meta.get("num_classes") or 0)
            if not isinstance(kwargs, dict):
                raise ValueError
            nc = int(kwargs.pop("num_classes", nc))  # a file of before 2026-12-04 may hold it there too
        except (ValueError, TypeError):
            raise SlimlabError(f"{path}: malformed model arguments in its header") from None
        model = create_model(meta["model_name"], nc, **_offline(kwargs))
    else:
        _same_head(model, sd, path)
    resize_to_state_dict(model, sd)
    load_state_checked(model, sd, str(path))
    return model.eval()


