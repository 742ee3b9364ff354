"""Magnitude and n:m pruning for Keras. Keras 3 (and tf-keras with `engine: native`): the neutral
`Pruner` (compress/passes/pruning.py) over a kernel adapter, driven during `fit` by the lifecycle
callback. tf-keras with `engine: auto|tfmot`: tfmot's prune_low_magnitude, with a pruning
frequency derived so the final sparsity is reached."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from compress.backends.base import PassContext
from compress.backends.keras.distillation import objective_for
from compress.backends.keras.environment import keras_api, require_legacy_tf_keras
from compress.backends.keras.layers import keras_layers, kernels
from compress.backends.keras.training import fit
from compress.errors import ModelError, message_line
from compress.passes.lifecycle import TrainingHook
from compress.passes.masks import achieved_sparsity
from compress.passes.prune import (
    MagnitudePrune,
    NMPrune,
    PruneBase,
    check_achieved,
    check_schedule_fits,
    expected_sparsity,
    prune_record,
)
from compress.passes.pruning import IN, OUT, Pruner, layout, run_prune, select

WeightPrune = MagnitudePrune | NMPrune

TRANSPOSED = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}


def kernel_layout(layer_kind: str, kernel_rank: int) -> tuple[str, ...]:
    """Named axes of a Keras kernel: (*kernel, in, out); ConvTranspose kernels are
    (*kernel, out, in)."""
    channels = (OUT, IN) if layer_kind in TRANSPOSED else (IN, OUT)
    return layout(*channels, kernel_dims=kernel_rank - 2, kernel_first=True)


class KerasKernels:
    """The pruner's adapter over the named layers' kernels."""

    def __init__(self, model: Any, names: list[str]) -> None:
        self.kernels = kernels(model, names)
        self.kinds = {layer.name: layer.kind for layer in keras_layers(model)}
        self.masks: dict[str, np.ndarray] = {}

    def layouts(self) -> dict[str, tuple[str, ...]]:
        return {n: kernel_layout(self.kinds[n], len(k.shape)) for n, k in self.kernels.items()}

    def read(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(k.numpy()) for name, k in self.kernels.items()}

    def set_masks(self, masks: Mapping[str, np.ndarray]) -> None:
        self.masks.update(masks)

    def apply_masks(self) -> None:
        # np.where writes +0.0; multiplying by the mask would leave -0.0 that gzip pays for
        for name, kernel in self.kernels.items():
            if name in self.masks:
                values = np.asarray(kernel.numpy())
                kernel.assign(np.where(self.masks[name], values, np.zeros_like(values)))


def apply_prune(model: Any, config: WeightPrune, context: PassContext) -> tuple[Any, dict]:
    """Run a weight prune pass on a Keras model; returns the (possibly new) model and its record."""
    flavor = context.backend.name
    names = select(config, keras_layers(model))
    engine = config.engine_for(flavor, config.trains, config.scope == "global")
    if engine == "tfmot":
        model, updates, training = _prune_with_tfmot(model, names, config, context)
        pruned = {n: np.asarray(k.numpy()) for n, k in kernels(model, names).items()}
        achieved, per_layer = achieved_sparsity(pruned)
        expected = expected_sparsity(config, {n: k.size for n, k in pruned.items()})
        check_achieved(config, achieved, expected)
        record = prune_record(config, achieved, per_layer, updates, training, expected)
        return model, {**record, "engine": engine}

    def fine_tune(pruner: Pruner) -> dict:
        return fit_pruned(model, config, context, [], hooks=[pruner])

    record = run_prune(config, KerasKernels(model, names), fine_tune)
    return model, {**record, "engine": engine}


def _steps(config: PruneBase, context: PassContext) -> tuple[int, int]:
    inputs = context.training(config)
    per_epoch = math.ceil(len(inputs.split) / inputs.batch_size)
    return per_epoch, per_epoch * inputs.spec.epochs


def fit_pruned(
    model: Any,
    config: PruneBase,
    context: PassContext,
    callbacks: list[Any],
    hooks: list[TrainingHook],
    description: str = "pruning + fine-tuning",
    student: Any = None,
) -> dict:
    """Fine-tune a prune pass's model with the recipe's trainer, these callbacks and lifecycle
    hooks, distilling from an earlier recovery distill pass's teacher when there is one
    (`student`: the model whose outputs the distillation reads, when `model` wraps it)."""
    inputs = context.training(config)
    return fit(
        keras_api(context.backend.name),
        model,
        inputs.spec,
        inputs.split,
        inputs.batch_size,
        callbacks,
        context.reporter,
        description,
        distillation=objective_for(model if student is None else student, context),
        hooks=hooks,
    )


def tfmot_frequency(desired: int, span: int) -> int:
    """The largest frequency <= desired that divides the schedule's span, so tfmot's last
    mask update lands exactly on its end step (otherwise the final sparsity is never set)."""
    for frequency in range(min(desired, max(span, 1)), 0, -1):
        if span % frequency == 0:
            return frequency
    return 1


def _prune_with_tfmot(
    model: Any, names: list[str], config: WeightPrune, context: PassContext
) -> tuple[Any, int, dict]:
    require_legacy_tf_keras()
    import tensorflow_model_optimization as tfmot

    api = keras_api("tf_keras")
    per_epoch, total = _steps(config, context)
    check_schedule_fits(config, per_epoch, total)
    sparsity = tfmot.sparsity.keras
    schedule = config.schedule
    # tfmot updates masks before step k's batch, for k in [0, total): the last reachable step
    # is total - 1, where ours is "after the last step" (the same weights either way).
    begin = min(schedule.begin_step(per_epoch) if schedule else 0, total - 1)
    end = min(schedule.end_step_for(per_epoch) if schedule else 0, total - 1)
    desired = schedule.update_every(per_epoch) if schedule else 1
    frequency = tfmot_frequency(desired, end - begin)

    def schedule_of(name: str) -> Any:
        """tfmot's schedule for one layer, ramping to that layer's level."""
        final = config.level_of(name)
        if schedule is None or schedule.kind == "constant":
            return sparsity.ConstantSparsity(final, begin, frequency=frequency)
        return sparsity.PolynomialDecay(
            initial_sparsity=min(schedule.initial_sparsity, final),
            final_sparsity=final,
            begin_step=begin,
            end_step=end,
            power=1.0 if schedule.kind == "linear" else schedule.exponent,
            frequency=frequency,
        )

    if schedule is None or schedule.kind == "constant":
        updates = 1 + (total - 1 - begin) // frequency
    else:
        updates = 1 + (end - begin) // frequency
    extra = tfmot_pattern(config)

    # Unwrapped layers are reused as they are and wrapped ones keep their layer: the clone
    # shares the original weights.
    def wrap(layer: Any) -> Any:
        if layer.name in names:
            return sparsity.prune_low_magnitude(
                layer, pruning_schedule=schedule_of(layer.name), **extra
            )
        return layer

    try:
        wrapped = api.models.clone_model(model, clone_function=wrap)
    except (ValueError, TypeError) as exc:
        raise ModelError(
            f"prune: tfmot cannot wrap this {type(model).__name__} ({message_line(exc)}); "
            "tfmot needs a Sequential or Functional model: use engine: native"
        ) from exc
    training = fit_pruned(
        wrapped, config, context, [sparsity.UpdatePruningStep()], [], student=model
    )
    stripped = sparsity.strip_pruning(wrapped)
    for kernel in kernels(stripped, names).values():  # tfmot multiplies: make -0.0 plain 0.0
        values = np.asarray(kernel.numpy())
        kernel.assign(np.where(values == 0, np.zeros_like(values), values))
    return stripped, updates, training


def tfmot_pattern(config: WeightPrune) -> dict:
    """tfmot's arguments for the weight pattern: n:m as zeros by group, else none."""
    pattern = config.pattern()
    if pattern is None:
        return {}
    n, m = pattern
    return {"sparsity_m_by_n": (m - n, m)}
