"""Keras -> ONNX: Keras 3 with `model.export(format="onnx")`, tf-keras with tf2onnx."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

import compress.interrupts as interrupts
from compress.backends.base import ExportInfo
from compress.backends.keras.layers import flat_layers, named_weights
from compress.backends.native_logs import quiet_library
from compress.errors import ModelError, message_line
from compress.onnx.tidy import (
    fold_batch_reshapes,
    fold_extra_inputs,
    name_initializers,
    scope_layer,
)
from compress.recipe import Recipe


def _signature(recipe: Recipe) -> list[Any]:
    import tensorflow as tf

    return [
        tf.TensorSpec(
            [d if isinstance(d, int) and d > 0 else None for d in spec.shape],
            tf.as_dtype(spec.dtype),
            name=spec.name,
        )
        for spec in recipe.model.inputs
    ]


#: tf2onnx deep-copies the whole graph, weights included, before each of its optimizers so that
#: one that fails can be rolled back (10 s of ResNet-50's two exports). The conversion runs
#: without the copies (tf2onnx's own switch) and again with them only if it failed.
CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"


def export_keras(model: Any, recipe: Recipe, path: Path, flavor: str) -> ExportInfo:
    """Export to one ONNX file with exactly the recipe's inputs, then name its weights after the
    Keras layers."""
    try:
        with _quiet():
            try:
                with _environment(CATCH_ERRORS, "FALSE"):
                    exporter = _convert(model, recipe, path, flavor)
            except Exception:
                interrupts.check()  # an interrupt turned into a failure: no second try
                path.unlink(missing_ok=True)
                exporter = _convert(model, recipe, path, flavor)
    except Exception as exc:
        first = message_line(exc)
        raise ModelError(f"ONNX export of the {flavor} model failed: {first}") from exc
    fold_extra_inputs(
        path,
        len(recipe.model.inputs),
        lambda name, shape, dtype: captured_constant(model, name, shape, dtype),
    )
    name_initializers(path, named_weights(model))
    fold_batch_reshapes(path)
    quantized = any("quantize" in type(layer).__name__.lower() for layer in model.layers)
    return ExportInfo(exporter=exporter, quantized=quantized)


def _convert(model: Any, recipe: Recipe, path: Path, flavor: str) -> str:
    """Write `path` with tf2onnx (tf-keras) or Keras 3's exporter; returns the exporter's name."""
    opset = recipe.export.opset
    if flavor == "tf_keras":
        import tf2onnx

        tf2onnx.convert.from_keras(
            model, input_signature=_signature(recipe), opset=opset, output_path=str(path)
        )
        return "tf2onnx"
    import keras

    signature = [
        keras.InputSpec(
            shape=tuple(d if isinstance(d, int) and d > 0 else None for d in spec.shape),
            dtype=spec.dtype,
            name=spec.name,
        )
        for spec in recipe.model.inputs
    ]
    model.export(
        str(path), format="onnx", verbose=False, input_signature=signature, opset_version=opset
    )
    return "keras"


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name` set to `value` for the block, then as it was."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def captured_constant(model: Any, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The value of a constant that the exporter left as graph input `name`, read from the
    Keras layer its op path names (Normalization's mean: "model_1/norm_1/Sub/y:0")."""
    layers = {layer.name: layer for layer in flat_layers(model)}
    scope = scope_layer(name, layers)
    if scope is None:
        raise ModelError(
            f"the ONNX export has an extra input {name!r} that no Keras layer owns; the model "
            "cannot run without it"
        )
    layer, rest = layers[scope[0]], scope[1]
    for captured, value in _layer_captures(layer).items():
        if captured == rest and _fits(value, shape, dtype):
            return value
    raise ModelError(
        f"Keras layer {layer.name!r} ({type(layer).__name__}) was exported with a constant as "
        f"the extra ONNX input {name!r}, and its value could not be read from the layer"
    )


def _layer_captures(layer: Any) -> dict[str, np.ndarray]:
    """The constant tensors a layer's call captures, by name inside its scope ("Sub/y:0"),
    found by tracing the layer alone on its recorded input shape; {} when that is unknown."""
    import tensorflow as tf

    shape = (layer.get_build_config() or {}).get("input_shape")
    if shape is None or not all(d is None or isinstance(d, int) for d in shape):
        return {}
    spec = tf.TensorSpec(shape, layer.compute_dtype)
    with _quiet():
        graph = tf.function(lambda x: layer(x)).get_concrete_function(spec).graph
    captures = {}
    for external, internal in graph.captures:
        scope = scope_layer(internal.name, {layer.name})
        if scope is not None and external.dtype != tf.resource:
            captures[scope[1]] = np.asarray(external)
    return captures


def _fits(value: np.ndarray, shape: tuple, dtype: np.dtype) -> bool:
    if value.dtype != dtype or value.ndim != len(shape):
        return False
    return all(want is None or want == got for want, got in zip(shape, value.shape, strict=True))


def _quiet() -> contextlib.AbstractContextManager[None]:
    """tf2onnx logs every conversion step; keep the terminal for the toolkit's own output."""
    return quiet_library("tf2onnx")
