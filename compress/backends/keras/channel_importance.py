"""Channel importance for Keras groups: the weight slices the neutral `channel_scores` ranks.
l1/l2: the producers' kernels; bn_scale: the group's BatchNorm gammas (l2 where it has none);
taylor: |w * dL/dw| of the producers' kernels, summed over a few train batches; activation: the
producers' mean |output| per channel on data (Minitron's criterion)."""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.backends.base import PassContext
from compress.backends.keras.channel_graph import ChannelGraph, Group
from compress.backends.keras.channel_trace import SEPARABLE, TRANSPOSED
from compress.backends.keras.environment import keras_api
from compress.backends.keras.training import make_loss, output_shape, outputs_probabilities
from compress.errors import ModelError
from compress.passes.channels import channel_scores
from compress.passes.prune import ChannelPrune

#: Samples whose activations rank channels for `importance: activation`.
ACTIVATION_SAMPLES = 64
#: Train batches whose gradients taylor importance sums.
TAYLOR_BATCHES = 4


def output_kernel(layer: Any) -> tuple[Any, int]:
    """A producer's kernel variable and its output-channel axis."""
    kind = type(layer).__name__
    if kind in SEPARABLE:
        return layer.pointwise_kernel, -1
    return layer.kernel, -2 if kind in TRANSPOSED else -1


def group_scores(
    model: Any, graph: ChannelGraph, groups: list[Group], config: ChannelPrune, context: PassContext
) -> tuple[dict[str, np.ndarray], list[str]]:
    """({group name: one score per channel}, the groups bn_scale had to rank by l2)."""
    importance = config.ranking
    producers = [name for group in groups for name in group.producers]
    if importance == "taylor":
        slices = taylor_products(model, producers, config, context)
    elif importance == "activation":
        slices = activation_means(model, producers, config, context)
    else:
        slices = {name: _output_first(model.get_layer(name)) for name in producers}
    scores, fallback = {}, []
    for group in groups:
        if importance == "bn_scale":
            gammas = bn_gammas(model, graph, group)
            if gammas:
                scores[group.name] = channel_scores(gammas, "bn_scale")
                continue
            fallback.append(group.name)
        measure = {"bn_scale": "l2", "activation": "l1"}.get(importance, importance)
        scores[group.name] = channel_scores([slices[p] for p in group.producers], measure)
    return scores, fallback


def _output_first(layer: Any, values: np.ndarray | None = None) -> np.ndarray:
    kernel, axis = output_kernel(layer)
    return np.moveaxis(np.asarray(kernel.numpy()) if values is None else values, axis, 0)


def bn_gammas(model: Any, graph: ChannelGraph, group: Group) -> list[np.ndarray]:
    """The gamma of every BatchNormalization the group runs through, cut to its channels."""
    slices = []
    for entry in graph.layers.values():
        if entry.kind != "BatchNormalization" or entry.output is None or entry.output.flat:
            continue
        gamma = getattr(model.get_layer(entry.name), "gamma", None)
        if gamma is None:  # scale=False
            continue
        offset = 0
        for segment in entry.output.segments:
            if segment.group is not None and graph.find(segment.group) == group.id:
                slices.append(np.asarray(gamma.numpy())[offset : offset + segment.size])
            offset += segment.size
    return slices


def taylor_products(
    model: Any, producers: list[str], config: ChannelPrune, context: PassContext
) -> dict[str, np.ndarray]:
    """{producer: sum over batches of |kernel * dL/dkernel|, output channels first}, with the
    recipe's training loss on the first train batches."""
    import tensorflow as tf

    training = context.training(config)
    split, batch = training.split, training.batch_size
    if split.targets is None:
        raise ModelError("prune: importance taylor needs targets in the train split")
    if len(model.outputs) != 1:
        raise ModelError("prune: importance taylor needs a single-output model")
    api = keras_api(context.backend.name)
    shape = output_shape(model, split)
    probabilities = outputs_probabilities(model)
    loss, targets = make_loss(api, training.spec.loss, not probabilities, shape, split.targets)
    variables = [output_kernel(model.get_layer(name))[0] for name in producers]
    totals = [np.zeros(tuple(v.shape), np.float64) for v in variables]
    for start in range(0, min(len(split), TAYLOR_BATCHES * batch), batch):
        inputs = [x[start : start + batch] for x in split.inputs]
        with tf.GradientTape() as tape:
            value = loss(targets[start : start + batch], model(_one(inputs), training=False))
        gradients = tape.gradient(value, variables)
        for total, variable, gradient in zip(totals, variables, gradients, strict=True):
            if gradient is not None:
                total += np.abs(np.asarray(variable.numpy()) * np.asarray(gradient))
    return {
        name: _output_first(model.get_layer(name), total)
        for name, total in zip(producers, totals, strict=True)
    }


def activation_means(
    model: Any, producers: list[str], config: ChannelPrune, context: PassContext
) -> dict[str, np.ndarray]:
    """{producer: mean |output| per channel, shaped (channels, 1)} over the first samples of the
    train (else calibration) split: Minitron's activation criterion."""
    found = context.split(config)
    if found is None:
        raise ModelError("prune: importance activation needs a train or calibration split")
    api = keras_api(context.backend.name)
    probe = api.Model(model.inputs, [model.get_layer(name).output for name in producers])
    outputs = probe(list(found[1].take(ACTIVATION_SAMPLES).inputs), training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    return {
        name: np.abs(np.asarray(output)).reshape(-1, np.shape(output)[-1]).mean(axis=0)[:, None]
        for name, output in zip(producers, outputs, strict=True)
    }


def _one(inputs: list[np.ndarray]) -> Any:
    return inputs[0] if len(inputs) == 1 else inputs
