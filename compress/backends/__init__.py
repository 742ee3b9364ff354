"""Backend selection: one place decides which framework handles a model.

Frameworks are imported only when their backend is first used.
"""

from __future__ import annotations

from typing import Any

from compress.backends.base import Backend, owner_module
from compress.errors import ModelError, UsageError
from compress.recipe import MODEL_FILE_SUFFIXES, Recipe
from compress.sources import call_reference


def backend_named(name: str) -> Backend:
    """The backend for a framework name."""
    if name == "torch":
        from compress.backends.torch import TorchBackend

        return TorchBackend()
    raise UsageError(f"framework {name!r} is not supported (supported: torch)")


def backend_for_model(model: Any) -> Backend:
    """The backend that owns an in-memory model object."""
    owner = owner_module(model)
    if owner == "torch":
        return backend_named("torch")
    raise UsageError(
        f"cannot compress a {type(model).__name__} from {owner!r}: "
        "expected a torch.nn.Module (the only framework supported so far)"
    )


def load_model(recipe: Recipe, model: Any = None) -> tuple[Backend, Any]:
    """Return (backend, model): the given in-memory model, or the recipe's model loaded."""
    if model is not None:
        return backend_for_model(model), model
    spec = recipe.model
    if spec.framework:
        backend = backend_named(spec.framework)
        return backend, backend.load(recipe)
    if spec.source.endswith(MODEL_FILE_SUFFIXES):
        backend = backend_named("torch")
        return backend, backend.load(recipe)
    built = call_reference(spec.source, recipe.base_dir)
    if built is None:
        raise ModelError(f"{spec.source} returned None instead of a model")
    backend = backend_for_model(built)
    return backend, backend.load(recipe, built)
