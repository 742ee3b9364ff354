"""Keras -> ONNX: Keras 3 with `model.export(format="onnx")`, tf-keras with tf2onnx."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

from compress.backends.base import ExportInfo
from compress.backends.keras.layers import named_weights
from compress.backends.onnx.tidy import fold_batch_reshapes, name_initializers
from compress.errors import ModelError
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


def export_keras(model: Any, recipe: Recipe, path: Path, flavor: str) -> ExportInfo:
    """Export to one ONNX file, then name its weights after the Keras layers."""
    opset = recipe.export.opset
    try:
        with _quiet():
            if flavor == "tf_keras":
                import tf2onnx

                tf2onnx.convert.from_keras(
                    model, input_signature=_signature(recipe), opset=opset, output_path=str(path)
                )
                exporter = "tf2onnx"
            else:
                import keras

                signature = [
                    keras.InputSpec(
                        shape=tuple(d if isinstance(d, int) and d > 0 else None for d in s.shape),
                        dtype=s.dtype,
                        name=s.name,
                    )
                    for s in recipe.model.inputs
                ]
                model.export(
                    str(path),
                    format="onnx",
                    verbose=False,
                    input_signature=signature,
                    opset_version=opset,
                )
                exporter = "keras"
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX export of the {flavor} model failed: {first}") from exc
    name_initializers(path, named_weights(model))
    fold_batch_reshapes(path)
    quantized = any("quantize" in type(layer).__name__.lower() for layer in model.layers)
    return ExportInfo(exporter=exporter, quantized=quantized)


@contextlib.contextmanager
def _quiet():
    """tf2onnx logs every conversion step; keep the terminal for the toolkit's own output."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logger.setLevel(level)
