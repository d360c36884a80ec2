"""Rebuild a model from a checkpoint, pruned models included.

A checkpoint stores the model's registry name and arguments. A pruned model differs from its
registry architecture only in channel counts, and those are in the state dict's tensor shapes:
``resize_to_state_dict`` builds the registry model and resizes every conv, norm and linear layer
to the stored shapes before loading, so loading a pruned checkpoint needs nothing else.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from slimlab.errors import SlimlabError
from slimlab.models.registry import create_model


def resize_to_state_dict(model: nn.Module, sd: dict[str, torch.Tensor]) -> nn.Module:
    """Resize Conv2d / BatchNorm / Linear layers of ``model`` in place to the shapes in ``sd``."""
    for name, m in model.named_modules():
        key = f"{name}.weight" if name else "weight"
        if key not in sd:
            continue
        w = sd[key]
        if isinstance(m, nn.Conv2d) and w.shape != m.weight.shape:
            cout, cin_g = w.shape[:2]
            groups = cout if (m.groups > 1 and m.groups == m.in_channels and cin_g == 1) else m.groups
            m.in_channels, m.out_channels, m.groups = cin_g * groups, cout, groups
            m.weight = nn.Parameter(torch.empty_like(w))
            if m.bias is not None:
                m.bias = nn.Parameter(torch.empty(cout))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and w.shape != m.weight.shape:
            c = w.shape[0]
            m.num_features = c
            m.weight, m.bias = nn.Parameter(torch.empty(c)), nn.Parameter(torch.empty(c))
            m.register_buffer("running_mean", torch.zeros(c))
            m.register_buffer("running_var", torch.ones(c))
        elif isinstance(m, nn.Linear) and w.shape != m.weight.shape:
            m.out_features, m.in_features = w.shape
            m.weight = nn.Parameter(torch.empty_like(w))
            if m.bias is not None:
                m.bias = nn.Parameter(torch.empty(w.shape[0]))
    return model


def _offline(kwargs: dict) -> dict:
    """Model arguments with every download request removed: weights come from the checkpoint, never the network."""
    out = {k: v for k, v in kwargs.items() if k not in ("pretrained", "weights")}
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
        name, kwargs, nc = ckpt["model_name"], _offline(dict(ckpt.get("model_kwargs") or {})), ckpt["num_classes"]
    except KeyError as e:
        raise SlimlabError(f"{where} lacks '{e.args[0]}'") from None
    sd = ckpt["state_dict"]
    with torch.device("meta"):
        shell = create_model(name, nc, **kwargs)
    n_model = sum(t.numel() for t in shell.state_dict().values())
    n_sd = sum(t.numel() for t in sd.values())
    slack = 20 if ckpt.get("pruned") else 2  # a pruned model is smaller than its registry architecture
    if n_model > slack * n_sd + 10_000_000:
        raise SlimlabError(f"{where}: its model arguments describe {n_model:,} weights but its state_dict holds "
                           f"{n_sd:,}: refused")
    del shell
    model = create_model(name, nc, **kwargs)
    if ckpt.get("pruned"):
        resize_to_state_dict(model, sd)
    if load_weights:
        load_state_checked(model, sd, ckpt.get("path", "checkpoint"))
    return model


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


def load_matching(model: nn.Module, sd: dict, skip_head: bool = False) -> tuple[int, int]:
    """Copy every tensor of ``sd`` whose name and shape match (for ``--init``); return (copied, total).

    ``skip_head`` leaves the classifier (the last linear layer) as initialised: for a model whose classes
    differ from the checkpoint's, even when their number is the same."""
    own = model.state_dict()
    skip = head_keys(model) if skip_head else set()
    ok = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape and k not in skip}
    model.load_state_dict(ok, strict=False)
    return len(ok), len(own)
