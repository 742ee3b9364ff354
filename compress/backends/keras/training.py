"""The built-in trainer for Keras: `model.fit` driven by the recipe's `train` section."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np

from compress.data import Split
from compress.errors import ModelError
from compress.progress import Reporter
from compress.recipe import OptimizerSpec, TrainSpec


def make_optimizer(api: ModuleType, spec: OptimizerSpec) -> Any:
    extra = {"weight_decay": spec.weight_decay} if spec.weight_decay else {}
    if spec.type == "sgd":
        return api.optimizers.SGD(learning_rate=spec.lr, momentum=spec.momentum, **extra)
    if spec.type == "adamw":
        return api.optimizers.AdamW(learning_rate=spec.lr, weight_decay=spec.weight_decay)
    return api.optimizers.Adam(learning_rate=spec.lr, **extra)


def outputs_probabilities(model: Any) -> bool:
    """True when the model ends in a softmax (its outputs are probabilities, not logits)."""
    last = model.layers[-1]
    last = getattr(last, "layer", last)  # look through wrappers such as tfmot's pruning wrapper
    activation = getattr(last, "activation", None)
    return type(last).__name__ == "Softmax" or getattr(activation, "__name__", "") == "softmax"


def make_loss(api: ModuleType, name: str, from_logits: bool, targets: np.ndarray) -> Any:
    losses = api.losses
    if name == "cross_entropy":
        if targets.ndim == 1:
            return losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        return losses.CategoricalCrossentropy(from_logits=from_logits)
    if name == "bce_with_logits":
        return losses.BinaryCrossentropy(from_logits=True)
    return losses.MeanSquaredError()


def fit(
    api: ModuleType,
    model: Any,
    spec: TrainSpec,
    split: Split,
    batch_size: int,
    callbacks: list[Any],
    reporter: Reporter,
    description: str,
    from_logits: bool | None = None,
    distillation: Any = None,
    feature_targets: list[np.ndarray] | None = None,
) -> dict:
    """Compile and fit in place; returns {"epochs", "steps", "final_loss"}.

    `from_logits` defaults to whether the model ends without a softmax; pass it when a wrapper
    (QAT) hides the original output activation. `distillation` (see distillation.py) replaces
    the loss and the targets; `feature_targets` go to the model's extra (feature) outputs.
    """
    if split.targets is None:
        raise ModelError("training needs targets in the train split")
    api.utils.set_random_seed(spec.seed)
    targets: Any = split.targets
    if distillation is not None:
        loss: Any = distillation.loss()
        targets = distillation.targets(split.targets)
    else:
        probabilities = outputs_probabilities(model) if from_logits is None else not from_logits
        loss = make_loss(api, spec.loss, not probabilities, split.targets)
    weights = None
    if feature_targets:
        weight = distillation.config.feature_weight if distillation is not None else 1.0
        loss = [loss] + ["mse"] * len(feature_targets)
        weights = [1.0] + [weight] * len(feature_targets)
        targets = [targets, *feature_targets]
    model.compile(optimizer=make_optimizer(api, spec.optimizer), loss=loss, loss_weights=weights)
    steps_per_epoch = math.ceil(len(split) / batch_size)
    inputs = split.inputs[0] if len(split.inputs) == 1 else split.inputs
    with reporter.bar(description, spec.epochs * steps_per_epoch) as advance:
        progress = progress_callback(api, advance, spec.epochs)
        history = model.fit(
            inputs,
            targets,
            batch_size=batch_size,
            epochs=spec.epochs,
            shuffle=True,
            verbose=0,
            callbacks=[*callbacks, progress],
        )
    losses = history.history.get("loss", [float("nan")])
    if not np.isfinite(losses[-1]):
        raise ModelError(f"training diverged: loss is {losses[-1]}")
    return {
        "epochs": spec.epochs,
        "steps": spec.epochs * steps_per_epoch,
        "final_loss": round(float(losses[-1]), 6),
    }


def progress_callback(api: ModuleType, advance: Any, epochs: int) -> Any:
    """A Keras callback that moves the progress bar once per batch."""

    class Progress(api.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            status = f"epoch {self.epoch + 1}/{epochs}" + (f" loss {loss:.4f}" if loss else "")
            advance(status=status)

    return Progress()
