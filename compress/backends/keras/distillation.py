"""Knowledge distillation for Keras (Keras 3 and tf-keras).

The teacher is frozen and the data fixed, so its outputs (and feature maps) are computed once and
passed to `fit` as extra targets: y = [one-hot labels | teacher logits]. One custom loss then works
for both Keras kinds, tfmot wrappers included. Feature matching trains a two-output model that
shares the student's layers, with a Dense or 1x1 Conv projection when widths differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from compress.backends.base import PassContext, distill_models
from compress.backends.keras.environment import keras_api
from compress.backends.keras.training import fit, outputs_probabilities
from compress.data import Split
from compress.errors import ModelError
from compress.passes.distill import DistillPass, register_recovery, training_follows


@dataclass
class Distillation:
    """What `fit` needs to train against a teacher."""

    config: DistillPass
    teacher_logits: np.ndarray
    student_probabilities: bool

    def targets(self, labels: np.ndarray) -> np.ndarray:
        classes = self.teacher_logits.shape[-1]
        onehot = labels if labels.ndim == 2 else np.eye(classes, dtype=np.float32)[labels]
        return np.concatenate([onehot.astype(np.float32), self.teacher_logits], axis=-1)

    def loss(self) -> Any:
        import tensorflow as tf

        temperature, alpha = self.config.temperature, self.config.alpha
        probabilities = self.student_probabilities

        def distillation_loss(y_true: Any, y_pred: Any) -> Any:
            classes = tf.shape(y_true)[-1] // 2  # y_true = [one-hot labels | teacher logits]
            labels, teacher = y_true[:, :classes], y_true[:, classes:]
            logits = tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0)) if probabilities else y_pred
            hard = tf.keras.losses.categorical_crossentropy(labels, logits, from_logits=True)
            soft_teacher = tf.nn.softmax(teacher / temperature)
            log_student = tf.nn.log_softmax(logits / temperature)
            soft = (
                tf.reduce_sum(
                    soft_teacher * (tf.math.log(soft_teacher + 1e-12) - log_student), axis=-1
                )
                * temperature**2
            )
            return alpha * soft + (1 - alpha) * hard

        return distillation_loss


def teacher_logits(teacher: Any, split: Split, batch_size: int) -> np.ndarray:
    inputs = split.inputs[0] if len(split.inputs) == 1 else split.inputs
    outputs = np.asarray(teacher.predict(inputs, batch_size=batch_size, verbose=0))
    if outputs_probabilities(teacher):
        outputs = np.log(np.clip(outputs, 1e-7, 1.0))
    return outputs.astype(np.float32)


def distillation_for(
    model: Any, teacher: Any, config: DistillPass, context: PassContext
) -> Distillation:
    if config.mask_input is not None:
        raise ModelError("distill: mask_input is available for PyTorch models")
    if config.output_loss != "kl":
        raise ModelError(
            f"distill: output_loss {config.output_loss} is available for PyTorch models; Keras "
            "models distill with kl (the softened teacher outputs)"
        )
    recipe = context.recipe
    assert recipe.data is not None
    split = context.data["train"]
    logits = teacher_logits(teacher, split, recipe.data.batch_size)
    example = split.inputs[0][:2] if len(split.inputs) == 1 else [x[:2] for x in split.inputs]
    student_shape = tuple(np.asarray(model(example, training=False)).shape[1:])
    if student_shape != logits.shape[1:]:
        raise ModelError(
            f"distill: the teacher's output shape {(2, *logits.shape[1:])} differs from the "
            f"student's {(2, *student_shape)}"
        )
    return Distillation(config, logits, outputs_probabilities(model))


def objective_for(model: Any, context: PassContext) -> Distillation | None:
    """The distillation registered by an earlier recovery distill pass, for a training pass."""
    if context.distiller is None:
        return None
    teacher, config = context.distiller
    if config.features:
        raise ModelError(
            "distill: feature matching cannot be combined with pruning or QAT "
            "for Keras models; use output distillation (no features)"
        )
    return distillation_for(model, teacher, config, context)


def apply_distill(model: Any, config: DistillPass, context: PassContext) -> tuple[Any, dict]:
    """Register recovery distillation for later passes, or train the student now."""
    teacher, student = distill_models(context.backend, config, context)
    if student is None and training_follows(context.recipe.passes, config):
        return model, register_recovery(context, teacher, config)
    student = model if student is None else student
    training_inputs = context.training(config)
    api = keras_api(context.backend.name)
    distillation = distillation_for(student, teacher, config, context)
    trained = _with_features(api, student, teacher, config, context) if config.features else student
    training = fit(
        api,
        trained,
        training_inputs.spec,
        training_inputs.split,
        training_inputs.batch_size,
        [],
        context.reporter,
        "distillation",
        distillation=distillation,
        feature_targets=_feature_targets(api, teacher, config, context),
    )
    return student, {
        "mode": "recovery" if config.student is None else "student",
        "temperature": config.temperature,
        "alpha": config.alpha,
        "features": dict(config.features),
        "student_params": int(student.count_params()),
        "teacher_params": int(teacher.count_params()),
        "training": training,
    }


def _graph(api: ModuleType, model: Any, context: PassContext, role: str) -> tuple[Any, dict]:
    """A fresh symbolic call of the model's layers: (inputs, {layer name: output tensor}).

    Calling the same layer objects on a new Input shares their weights; it works for Sequential
    models, whose inner layers have no symbolic outputs in Keras 3.
    """
    specs = context.recipe.model.inputs
    if len(specs) != 1 or not hasattr(model, "layers"):
        raise ModelError(
            f"distill: feature matching needs a single-input Sequential or Functional {role}"
        )
    shape = [d if isinstance(d, int) and d > 0 else None for d in specs[0].shape[1:]]
    inputs = api.Input(tuple(shape), dtype=specs[0].dtype)
    tensor, outputs = inputs, {}
    for layer in model.layers:
        tensor = layer(tensor)
        outputs[layer.name] = tensor
    return inputs, outputs


def _feature(outputs: dict, name: str, role: str) -> Any:
    if name not in outputs:
        known = ", ".join(outputs)
        raise ModelError(
            f"distill: feature layer {name!r} does not exist in the {role} (layers: {known})"
        )
    return outputs[name]


def _with_features(
    api: ModuleType, student: Any, teacher: Any, config: DistillPass, context: PassContext
) -> Any:
    """A model with the student's output plus one projected feature output per pair."""
    inputs, student_outputs = _graph(api, student, context, "student")
    _, teacher_outputs = _graph(api, teacher, context, "teacher")
    outputs = [list(student_outputs.values())[-1]]
    for s_name, t_name in config.features.items():
        feature = _feature(student_outputs, s_name, "student")
        width = _feature(teacher_outputs, t_name, "teacher").shape[-1]
        if feature.shape[-1] != width:
            layer = api.layers.Dense if len(feature.shape) == 2 else api.layers.Conv2D
            arguments = (width,) if len(feature.shape) == 2 else (width, 1)
            feature = layer(*arguments, name=f"project_{s_name}")(feature)
        outputs.append(feature)
    return api.Model(inputs, outputs)


def _feature_targets(
    api: ModuleType, teacher: Any, config: DistillPass, context: PassContext
) -> list[np.ndarray]:
    if not config.features:
        return []
    inputs, teacher_outputs = _graph(api, teacher, context, "teacher")
    outputs = [_feature(teacher_outputs, name, "teacher") for name in config.features.values()]
    split = context.data["train"]
    features = api.Model(inputs, outputs).predict(split.inputs[0], verbose=0)
    return [np.asarray(f) for f in (features if isinstance(features, list) else [features])]
