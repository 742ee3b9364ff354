"""The built-in trainer for Keras: `model.fit` driven by the recipe's `train` section."""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from compress.data import Split
from compress.errors import ModelError
from compress.passes.lifecycle import TrainingHook
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


LOSS_SHAPES = {
    "cross_entropy": "outputs N×C with integer class targets N, outputs N×…×C with integer "
    "targets N×… (a class per position, e.g. token logits N×T×V with targets N×T), or one-hot "
    "or probability targets of the outputs' shape",
    "mse": "targets of the outputs' shape (outputs N×1 also take targets N)",
    "bce_with_logits": "targets of the outputs' shape (outputs N×1 also take targets N)",
}
DISTILL_SHAPES = "outputs N×C with integer class targets N or one-hot targets N×C"


def make_loss(
    api: ModuleType, name: str, from_logits: bool, outputs: tuple[int, ...], targets: np.ndarray
) -> tuple[Any, np.ndarray]:
    """The Keras loss for `train.loss` and the targets shaped for it; shapes the loss cannot take
    (see LOSS_SHAPES) are a ModelError naming the loss, both shapes and what would work."""
    losses = api.losses
    sample, wanted = outputs[1:], targets.shape[1:]
    if name == "cross_entropy":
        if sample and wanted == sample[:-1]:  # class indices: N×C, or N×T×V tokens
            return losses.SparseCategoricalCrossentropy(from_logits=from_logits), targets
        if sample and wanted == sample:
            return losses.CategoricalCrossentropy(from_logits=from_logits), targets
    elif wanted == sample or sample == (*wanted, 1):
        loss = (
            losses.BinaryCrossentropy(from_logits=True)
            if name == "bce_with_logits"
            else losses.MeanSquaredError()
        )
        return loss, targets.reshape(len(targets), *sample)
    raise shape_error(f"train.loss {name}", outputs, targets, LOSS_SHAPES[name])


def shape_error(what: str, outputs: tuple[int, ...], targets: np.ndarray, takes: str) -> ModelError:
    """Outputs (measured on one sample, shown with the targets' N) that `what` cannot take."""
    shown = (len(targets), *outputs[1:])
    return ModelError(
        f"{what}: model outputs {shown} and targets {targets.shape} do not fit; it takes {takes}"
    )


def output_shape(model: Any, split: Split) -> tuple[int, ...]:
    """The shape of the model's (first, when it has feature outputs) output on one sample."""
    example = split.inputs[0][:1] if len(split.inputs) == 1 else [x[:1] for x in split.inputs]
    outputs = model(example, training=False)
    first = outputs[0] if isinstance(outputs, list | tuple) else outputs
    return tuple(int(dim) for dim in first.shape)


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
    hooks: Sequence[TrainingHook] = (),
) -> dict:
    """Compile and fit in place; returns {"epochs", "steps", "final_loss"}. `hooks` (the pass
    lifecycle) run around the optimizer steps, through one callback.

    `from_logits` defaults to whether the model ends without a softmax; pass it when a wrapper
    (QAT) hides the original output activation. `distillation` (see distillation.py) replaces
    the loss and the targets; `feature_targets` go to the model's extra (feature) outputs.
    """
    if split.targets is None:
        raise ModelError("training needs targets in the train split")
    api.utils.set_random_seed(spec.seed)
    outputs = output_shape(model, split)
    targets: Any = split.targets
    if distillation is not None:
        if len(outputs) != 2 or split.targets.shape[1:] not in ((), outputs[1:]):
            raise shape_error("distill loss", outputs, split.targets, DISTILL_SHAPES)
        loss: Any = distillation.loss()
        targets = distillation.targets(split.targets)
    else:
        probabilities = outputs_probabilities(model) if from_logits is None else not from_logits
        loss, targets = make_loss(api, spec.loss, not probabilities, outputs, split.targets)
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
        total = spec.epochs * steps_per_epoch
        if hooks:
            callbacks = [*callbacks, lifecycle_callback(api, hooks, steps_per_epoch, total)]
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


def lifecycle_callback(
    api: ModuleType, hooks: Sequence[TrainingHook], steps_per_epoch: int, total_steps: int
) -> Any:
    """The one Keras adapter of the pass lifecycle: a `fit` callback (also what a
    CompressionSession hands to the user's `fit`)."""

    class Lifecycle(api.callbacks.Callback):
        step = 0

        def on_train_begin(self, logs=None):
            for hook in hooks:
                hook.on_start(steps_per_epoch, total_steps)

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            for hook in hooks:
                hook.on_update(self.step)

        def on_train_end(self, logs=None):
            for hook in hooks:
                hook.on_end()

    return Lifecycle()


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
