"""The Keras backend: Keras 3 (`keras`) and tf-keras (`tf_keras`, Keras 2) models.

TensorFlow is imported only when a Keras model is used, with tf.keras set to tf-keras first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from compress.backends.base import Backend, ExportInfo, PassContext
from compress.backends.keras.distillation import apply_distill
from compress.backends.keras.environment import keras_api
from compress.backends.keras.export import export_keras
from compress.backends.keras.layers import keras_layers
from compress.backends.keras.loading import load
from compress.backends.keras.pruning import apply_prune
from compress.backends.keras.quantization import apply_qat
from compress.errors import ModelError
from compress.passes.distill import training_follows
from compress.passes.targets import LayerInfo
from compress.recipe import Recipe


def _distill(model: Any, config: Any, context: PassContext, flavor: str) -> tuple[Any, dict]:
    from compress.backends import backend_named, distill_models

    teacher, student = distill_models(backend_named(flavor), config, context)
    later = training_follows(context.recipe.passes, config)
    return apply_distill(model, config, context, flavor, teacher, student, later)


PASS_HANDLERS = {"prune": apply_prune, "quantize": apply_qat, "distill": _distill}


class KerasBackend(Backend):
    """`flavor` is "keras" (Keras 3) or "tf_keras" (Keras 2, what tfmot works with)."""

    def __init__(self, flavor: str) -> None:
        self.name = flavor
        self.api = keras_api(flavor)

    def load(self, recipe: Recipe, built: Any = None) -> Any:
        return load(recipe, self.name, built)

    def copy(self, model: Any) -> Any:
        try:
            clone = self.api.models.clone_model(model)
        except (ValueError, TypeError) as exc:
            raise ModelError(
                f"cannot copy this {type(model).__name__} (subclassed Keras models cannot be "
                "cloned): give it through the recipe's model.source instead"
            ) from exc
        clone.set_weights(model.get_weights())
        return clone

    def layers(self, model: Any) -> list[LayerInfo]:
        return keras_layers(model)

    def apply_pass(self, model: Any, config: Any, context: PassContext) -> tuple[Any, dict]:
        handler = PASS_HANDLERS.get(config.type)
        if handler is None:
            raise ModelError(f"pass {config.type!r} is not available for {self.name} models")
        return handler(model, config, context, self.name)

    def predict(self, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
        if not isinstance(outputs, list | tuple):
            outputs = [outputs]
        return [np.asarray(output) for output in outputs]

    def export_onnx(self, model: Any, recipe: Recipe, path: Path) -> ExportInfo:
        return export_keras(model, recipe, path, self.name)

    def versions(self) -> dict[str, str]:
        import tensorflow as tf

        return {"tensorflow": tf.__version__, "keras": self.api.__version__}
