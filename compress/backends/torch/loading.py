"""Load PyTorch models safely: builders, safetensors and weights-only state dicts."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.backends.torch.hf_folder import load_folder
from compress.errors import ModelError, UnsafeModelError
from compress.recipe import Recipe
from compress.sources import call_reference


def load_module(recipe: Recipe, built: Any = None) -> nn.Module:
    """The recipe's model as an nn.Module in eval mode, with its weights loaded."""
    spec = recipe.model
    if built is None:
        source = recipe.resolve(spec.source) if _is_file(spec.source) else None
        if source is not None and source.is_dir():
            built = load_folder(source, spec.trust)
        elif source is not None:
            built = _load_file(source, spec.trust)
        else:
            built = call_reference(spec.source, recipe.base_dir)
    if not isinstance(built, nn.Module):
        raise ModelError(f"{spec.source} gave a {type(built).__name__}, not a torch.nn.Module")
    if spec.weights:
        load_weights(built, recipe.resolve(spec.weights))
    return built.eval()


def load_weights(module: nn.Module, path: Path) -> None:
    """Load a .safetensors or weights-only .pt/.pth state dict; must fit the model exactly."""
    state = read_state_dict(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [
        f"{key} {tuple(state[key].shape)} vs model {tuple(own[key].shape)}"
        for key in sorted(set(own) & set(state))
        if tuple(state[key].shape) != tuple(own[key].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatch {_few(mismatched)}")
        raise ModelError(f"weights {path.name} do not fit the model: {'; '.join(parts)}")
    module.load_state_dict(state, strict=True)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a weights file, never executing pickled code."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"cannot read {path.name}: {exc}") from exc
    state = _torch_load(path, trust=False)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path.name} is not a state dict of tensors")
    return state


def _load_file(path: Path, trust: bool) -> Any:
    loaded = _torch_load(path, trust)
    if isinstance(loaded, dict):
        raise ModelError(
            f"{path.name} is a state dict, not a model: set model.source to a builder "
            f"('file.py:fn') and model.weights to {path.name}"
        )
    return loaded


def _torch_load(path: Path, trust: bool) -> Any:
    """torch.load with weights_only=True unless the recipe trusts the file; never a fallback."""
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        if trust:
            raise ModelError(f"cannot load {path.name}: {exc}") from exc
        raise UnsafeModelError(
            f"refused to load {path.name}: it is a pickle that needs more than tensors to load"
            f"{_needed_global(str(exc))}, and unpickling it can run any code. Save its weights "
            "instead (torch.save(model.state_dict(), ...) or safetensors.torch.save_file) and "
            "give them as model.weights with the builder as model.source; model.trust: true "
            "loads the pickle, only for a file you made yourself"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise ModelError(f"cannot load {path.name}: {exc}") from exc


def _needed_global(message: str) -> str:
    """ " (it imports `name`)" from torch's refusal, whose own advice (load with
    weights_only=False, or allow-list the global) is the unsafe path and is not repeated."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return f" (it imports {found.group(1)})" if found else ""


def _is_file(source: str) -> bool:
    return source.endswith((".pt", ".pth")) or ":" not in source


def _few(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
