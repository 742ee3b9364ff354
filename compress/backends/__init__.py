"""Backend selection: one place decides which framework handles a model.

Frameworks are imported only when their backend is first used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.backends import handlers as _handlers  # noqa: F401 - registers the handlers
from compress.backends.base import FRAMEWORKS, Backend, framework_of
from compress.backends.native_logs import filtered_native_stderr
from compress.errors import ModelError, UsageError
from compress.recipe import KERAS_FILE_SUFFIXES, ONNX_FILE_SUFFIXES, TORCH_FILE_SUFFIXES, Recipe
from compress.sources import call_reference

__all__ = ["Backend", "backend_named", "framework_of", "load_model", "load_pruned"]


def backend_named(name: str) -> Backend:
    """The backend for a framework name: torch, keras (Keras 3) or tf_keras (Keras 2)."""
    if name == "torch":
        from compress.backends.torch import TorchBackend

        return TorchBackend()
    if name in ("keras", "tf_keras"):
        from compress.backends.keras import KerasBackend

        return KerasBackend(name)
    if name == "onnx":
        from compress.backends.onnx.backend import OnnxBackend

        return OnnxBackend()
    raise UsageError(f"framework {name!r} is not supported (supported: {', '.join(FRAMEWORKS)})")


def load_model(recipe: Recipe, model: Any = None) -> tuple[Backend, Any]:
    """Return (backend, model): the given in-memory model, or the recipe's model loaded."""
    from compress.backends.keras.environment import prepare

    prepare()  # before any builder can import TensorFlow
    if model is not None:
        return backend_named(framework_of(model)), model
    spec = recipe.model
    if spec.source is None:
        raise recipe.error_at(
            ("model",),
            "model.source is required unless a model object is passed "
            "(compress.apply(..., model=...) or CompressionSession)",
        )
    if spec.source.endswith(TORCH_FILE_SUFFIXES) or recipe.resolve(spec.source).is_dir():
        backend = backend_named(spec.framework or "torch")  # a file, or a Hugging Face folder
        with filtered_native_stderr():  # transformers imports libraries that log natively
            return backend, backend.load(recipe)
    if spec.source.endswith(ONNX_FILE_SUFFIXES):
        backend = backend_named("onnx")
        return backend, backend.load(recipe)
    if spec.source.endswith(KERAS_FILE_SUFFIXES):
        from compress.backends.keras.loading import flavor_of_file

        backend = backend_named(flavor_of_file(Path(spec.source), spec.framework))
        return backend, backend.load(recipe)
    with filtered_native_stderr():  # a builder may import TensorFlow
        built = call_reference(spec.source, recipe.base_dir)
    if built is None:
        raise ModelError(f"{spec.source} returned None instead of a model")
    detected = framework_of(built)
    if spec.framework and spec.framework != detected:
        raise ModelError(
            f"model.framework is {spec.framework} but {spec.source} built a {detected} model"
        )
    backend = backend_named(detected)
    return backend, backend.load(recipe, built)


def load_pruned(path: str | Path, model: Any = None) -> Any:
    """The model a channel-pruning run saved next to its ONNX file, to keep training it: a
    PyTorch `*.pruned.safetensors` is loaded into `model` (the architecture as the recipe's
    builder makes it, resized to the pruned widths); a Keras `*.pruned.keras` loads by itself,
    in safe mode."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if model is None:
            raise UsageError(
                f"{path.name} holds weights and layer widths: pass the model as built "
                "(load_pruned(path, build())) to resize and load it into"
            )
        from compress.backends.torch.pruned_state import load_pruned as load_torch

        return load_torch(model, path)
    if path.suffix == ".keras":
        from compress.backends.keras.loading import load_keras_file

        return load_keras_file(path, "keras", trust=False)
    raise UsageError(f"{path.name}: not a pruned model file (.safetensors or .keras)")
