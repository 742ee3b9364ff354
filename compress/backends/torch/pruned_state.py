"""Save a channel-pruned PyTorch model so users can keep training it, without pickles.

The file is plain safetensors: the pruned state dict, plus (in its metadata) the layer widths
that forward() reads (`out_channels`, `in_features`, `num_attention_heads`, ...). Loading builds
the original architecture, resizes every parameter and buffer to the saved shapes, sets those
widths and loads the weights: `compress.load_pruned(build(), "model.pruned.safetensors")`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from compress.errors import ModelError

#: Module attributes that hold widths; saved when they are plain ints or tuples of ints.
WIDTHS = (
    "in_channels",
    "out_channels",
    "in_features",
    "out_features",
    "num_features",
    "normalized_shape",
    "num_channels",
    "groups",
    "num_groups",
    "num_attention_heads",
    "all_head_size",
    "nf",
    "nx",
    "embed_dim",
    "num_heads",
)
METADATA_KEY = "compress.widths"


def save_pruned(model: nn.Module, path: Path) -> None:
    """Write the model's weights and layer widths to `path` (safetensors)."""
    widths = {}
    for name, module in model.named_modules():
        found = {key: getattr(module, key) for key in WIDTHS if _width(getattr(module, key, None))}
        if found:
            widths[name] = found
    tensors = {
        key: value.detach().contiguous().clone() for key, value in model.state_dict().items()
    }
    save_file(tensors, str(path), metadata={METADATA_KEY: json.dumps(widths)})


def load_pruned(model: nn.Module, path: str | Path) -> nn.Module:
    """Resize `model` (the architecture as built, before pruning) to a saved pruned model and
    load its weights; returns the same module."""
    path = Path(path)
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), "pt") as handle:
            widths = json.loads((handle.metadata() or {}).get(METADATA_KEY, "{}"))
    except (OSError, ValueError, SafetensorError) as exc:
        raise ModelError(f"cannot read the pruned model {path}: {exc}") from exc
    modules = dict(model.named_modules())
    for name, values in widths.items():
        if name not in modules:
            raise ModelError(f"{path} was saved from another architecture: no layer {name!r}")
        for key, value in values.items():
            setattr(modules[name], key, tuple(value) if isinstance(value, list) else value)
    for key, tensor in tensors.items():
        owner_name, _, attr = key.rpartition(".")
        owner = modules.get(owner_name)
        current = getattr(owner, attr, None) if owner is not None else None
        if isinstance(current, torch.Tensor) and current.shape != tensor.shape:
            resized = torch.empty_like(tensor, dtype=current.dtype)
            if isinstance(current, nn.Parameter):
                setattr(owner, attr, nn.Parameter(resized, requires_grad=current.requires_grad))
            else:
                owner.register_buffer(attr, resized)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{path} does not fit this architecture: {str(exc)[:300]}") from exc
    for name, module in model.named_modules():
        problem = _inconsistent(module)
        if problem:
            raise ModelError(f"{path} does not fit this architecture: layer {name!r} {problem}")
    return model


def _inconsistent(module: nn.Module) -> str | None:
    """How a module's weights disagree with the widths its forward() reads, or None: a file
    whose shapes do not match would otherwise load and fail at the first forward pass."""
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.Linear):
        wanted = (module.out_features, module.in_features)
    elif isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        wanted = (module.out_channels, module.in_channels // module.groups)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
        wanted = (module.num_features,)
        weight = module.running_mean
    elif isinstance(module, nn.LayerNorm) and weight is not None:
        wanted = tuple(module.normalized_shape)
    else:
        return None
    if weight is None or tuple(weight.shape[: len(wanted)]) == wanted:
        return None
    return f"holds a {tuple(weight.shape)} tensor where its widths say {wanted}"


def _width(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, tuple) and bool(value) and all(isinstance(v, int) for v in value)
