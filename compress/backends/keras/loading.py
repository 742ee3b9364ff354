"""Load Keras models safely: builders, `.keras` files in safe mode, `.h5` only when trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from compress.backends.keras.environment import keras_api
from compress.errors import ModelError, UnsafeModelError, message_line
from compress.recipe import InputSpec, Recipe


def flavor_of_file(path: Path, framework: str | None) -> str:
    """`.h5` full models are tf-keras; `.keras` files are Keras 3 unless the recipe says."""
    if framework in ("keras", "tf_keras"):
        return framework
    return "tf_keras" if path.suffix == ".h5" else "keras"


def load_keras_file(path: Path, flavor: str, trust: bool) -> Any:
    """A whole model from a file; code-carrying content is refused unless trusted."""
    api = keras_api(flavor)
    if path.suffix == ".h5" and not trust:
        raise UnsafeModelError(
            f"refused to load {path.name}: .h5 model files ignore Keras safe mode and can run "
            "code when loaded (CVE-2025-9905); save as .keras, or set model.trust: true if you "
            "trust this file"
        )
    try:
        if path.suffix == ".h5":
            return api.models.load_model(path, compile=False)
        return api.models.load_model(path, compile=False, safe_mode=not trust)
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text:
            raise UnsafeModelError(
                f"refused to load {path.name}: it holds code (a Lambda layer or unsafe "
                "deserialization) that Keras safe mode blocks; set model.trust: true if you "
                "trust this file"
            ) from None
        raise ModelError(f"cannot load {path.name}: {text.splitlines()[0]}") from exc
    except (OSError, TypeError, KeyError) as exc:
        raise ModelError(f"cannot load {path.name}: {exc}") from exc


def load_weights(model: Any, path: Path) -> None:
    """Weights only (`.weights.h5` / `.h5` arrays): no objects are deserialized."""
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError) as exc:
        first = message_line(exc)
        raise ModelError(f"weights {path.name} do not fit the model: {first}") from exc


def ensure_built(model: Any, inputs: list[InputSpec]) -> None:
    """Keras models must have been called once before export; call with zeros if needed."""
    if getattr(model, "built", False) and getattr(model, "inputs", None):
        return
    arrays = [
        np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in spec.shape], dtype=spec.dtype)
        for spec in inputs
    ]
    try:
        model(arrays[0] if len(arrays) == 1 else arrays)
    except Exception as exc:
        raise ModelError(f"the model does not accept the declared inputs: {exc}") from exc


def load(recipe: Recipe, flavor: str, built: Any = None) -> Any:
    """The recipe's Keras model with its weights, built."""
    spec = recipe.model
    if built is None:
        built = load_keras_file(recipe.resolve(spec.source), flavor, spec.trust)
    if spec.weights:
        ensure_built(built, spec.inputs)
        load_weights(built, recipe.resolve(spec.weights))
    ensure_built(built, spec.inputs)
    return built
