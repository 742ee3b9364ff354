"""The Keras backend: Keras 3 (`keras`) and tf-keras (`tf_keras`, Keras 2) models.

TensorFlow is imported only when a Keras model is used, with tf.keras set to tf-keras first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from compress.backends.base import Backend, ExportInfo, PassContext
from compress.backends.keras.environment import keras_api
from compress.backends.keras.export import export_keras
from compress.backends.keras.layers import keras_layers
from compress.backends.keras.loading import load
from compress.comparison import check_finite
from compress.errors import ModelError
from compress.passes.targets import LayerInfo
from compress.recipe import KERAS_FILE_SUFFIXES, Recipe


class KerasBackend(Backend):
    """`flavor` is "keras" (Keras 3) or "tf_keras" (Keras 2, what tfmot works with)."""

    file_suffixes = KERAS_FILE_SUFFIXES

    def __init__(self, flavor: str) -> None:
        self.name = flavor
        self.api = keras_api(flavor)

    def load(self, recipe: Recipe, built: Any = None) -> Any:
        """The model with its weights; NaN or ±inf in any of them is an error naming it."""
        model = load(recipe, self.name, built)
        where = f"{recipe.model.weights or recipe.model.source or 'the given model'}:"
        for variable in model.weights:
            name = getattr(variable, "path", None) or variable.name
            check_finite([np.asarray(variable)], where, [f"weight {name}"])
        return model

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

    def params(self, model: Any) -> int:
        return int(model.count_params())

    def session(self, model: Any, context: PassContext, steps_per_epoch: int, epochs: int) -> Any:
        from compress.backends.keras.session import KerasSession

        return KerasSession(model, context, steps_per_epoch, epochs)

    model_suffix = ".keras"

    def save_model(self, model: Any, path: Path) -> None:
        model.save(path)

    def predict(self, model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
        outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
        if not isinstance(outputs, list | tuple):
            outputs = [outputs]
        return [np.asarray(output) for output in outputs]

    def check_loss(
        self, model: Any, loss: str, outputs: list[np.ndarray], targets: np.ndarray
    ) -> None:
        from compress.backends.keras.training import make_loss, outputs_probabilities

        make_loss(self.api, loss, not outputs_probabilities(model), outputs[0].shape, targets)

    def export_onnx(
        self, model: Any, recipe: Recipe, path: Path, exporter: str | None = None
    ) -> ExportInfo:
        return export_keras(model, recipe, path, self.name)

    def versions(self) -> dict[str, str]:
        import tensorflow as tf

        return {"tensorflow": tf.__version__, "keras": self.api.__version__}
