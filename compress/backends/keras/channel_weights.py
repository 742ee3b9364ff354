"""Channel pruning's weight surgery for Keras: the kept positions of every weight axis that
carries a group's channels, sliced out (the smaller model) or zeroed in place (the masked model
that the smaller one must agree with), and the rebuild of the model from its layers' configs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from compress.backends.base import owner_module
from compress.backends.keras.channel_graph import ChannelGraph, LayerChannels, Layout
from compress.backends.keras.channel_trace import DEPTHWISE, TRANSPOSED, weight_name
from compress.backends.keras.environment import keras_api
from compress.errors import ModelError, message_line

Keep = Mapping[int, np.ndarray]  # group root -> the sorted channel indices it keeps
#: Weights that stay as they are in the masked model: a removed channel is already silenced by
#: its zeroed kernel, gamma and beta, and zero statistics would only mislead a later re-choice.
UNMASKED = {"moving_mean", "moving_variance", "alpha"}


def axis_roles(kind: str, weight: str) -> list[tuple[int, str]]:
    """The channel axes of a weight: (axis, side), side "in" (input layout), "in*" (input
    layout, `inner` rows per channel) or "out" (output layout)."""
    if weight == "depthwise_kernel" or (weight == "kernel" and kind in DEPTHWISE):
        return [(-2, "in")]  # Keras 3 names a DepthwiseConv's kernel "kernel"
    if weight == "kernel":
        return [(-1, "in"), (-2, "out")] if kind in TRANSPOSED else [(-2, "in"), (-1, "out")]
    if weight == "pointwise_kernel":
        return [(-2, "in*"), (-1, "out")]
    if weight == "alpha":
        return [(-1, "out")]
    return [(0, "out")]  # bias, gamma, beta, moving_mean, moving_variance


def kept_positions(
    graph: ChannelGraph, layout: Layout | None, keep: Keep, length: int, inner: int = 1
) -> np.ndarray | None:
    """The positions an axis of `length` keeps, or None when it keeps all of them (no pruned
    group in the layout, or a length-1 axis that broadcasts over the channels)."""
    if layout is None or (length == 1 and layout.channels > 1):
        return None
    parts, offset, touched = [], 0, False
    for segment in layout.segments:
        kept = None if segment.group is None else keep.get(graph.find(segment.group))
        touched = touched or kept is not None
        parts.append(offset + (np.arange(segment.size) if kept is None else np.asarray(kept)))
        offset += segment.size
    if not touched:
        return None
    outer, rest = divmod(length, layout.channels * inner)
    if rest or outer < 1 or (outer > 1 and not layout.flat):
        raise ModelError(
            f"prune: a weight axis of {length} does not carry the {layout.channels} channels "
            "traced for it; leave the layer out with `ignore:`"
        )
    rows = np.arange(outer)[:, None] * layout.channels + np.concatenate(parts)[None, :]
    return (rows[..., None] * inner + np.arange(inner)).ravel()


def layer_values(
    graph: ChannelGraph,
    entry: LayerChannels,
    weights: list[tuple[str, np.ndarray]],
    keep: Keep,
    zero: bool,
) -> list[np.ndarray]:
    """One layer's weights with the removed channels sliced out, or (`zero`) set to +0.0."""
    result = []
    for name, value in weights:
        for axis, side in axis_roles(entry.kind, name):
            layout = entry.output if side == "out" else entry.inputs
            inner = entry.inner if side == "in*" else 1
            positions = kept_positions(graph, layout, keep, value.shape[axis], inner)
            if positions is None:
                continue
            if not zero:
                value = np.take(value, positions, axis=axis)
            elif name not in UNMASKED:
                value = _zero_except(value, axis, positions)
        result.append(value)
    return result


def _zero_except(value: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    keep = np.zeros(value.shape[axis], dtype=bool)
    keep[positions] = True
    shape = [1] * value.ndim
    shape[axis] = -1
    return np.where(keep.reshape(shape), value, np.zeros_like(value))


def copy_weights(source: Any, target: Any, graph: ChannelGraph, keep: Keep, zero: bool) -> None:
    """Set every layer of `target` from the same-named layer of `source`, sliced (or zeroed)."""
    for layer in source.layers:
        values = layer.get_weights()
        if not values:
            continue
        entry = graph.layers.get(layer.name)
        if entry is not None:
            named = [weight_name(v) for v in layer.weights]
            values = layer_values(graph, entry, list(zip(named, values, strict=True)), keep, zero)
        try:
            target.get_layer(layer.name).set_weights(values)
        except ValueError as exc:
            raise ModelError(
                f"prune: the weights of {layer.name!r} do not fit the rebuilt layer "
                f"({message_line(exc)}); leave it out with `ignore:`"
            ) from exc


def zero_weights(model: Any, graph: ChannelGraph, keep: Keep) -> None:
    """Zero the removed channels in place, everywhere they live."""
    copy_weights(model, model, graph, keep, zero=True)


def rebuild(model: Any, graph: ChannelGraph, keep: Keep) -> Any:
    """A new model of the same kind, each layer rebuilt from its config (the producers narrowed
    to their kept channels), with the kept weight slices copied over."""
    widths = {
        owner: len(keep[graph.find(group)])
        for group, owner in enumerate(graph.owners)
        if graph.find(group) in keep
    }

    def clone(layer: Any) -> Any:
        if type(layer).__name__ == "Lambda":
            return layer  # weightless code that Keras' safe mode will not rebuild: reused as is
        config = layer.get_config()
        if layer.name in widths:
            config["filters" if "filters" in config else "units"] = widths[layer.name]
        return type(layer).from_config(config)

    api = keras_api(owner_module(model))
    try:
        smaller = api.models.clone_model(model, clone_function=clone)
    except Exception as exc:  # Keras raises many kinds here; the message says what failed
        raise ModelError(
            f"prune: this {type(model).__name__} cannot be rebuilt from its layers' configs "
            f"({message_line(exc)}); leave the layers involved out with `ignore:`"
        ) from exc
    copy_weights(model, smaller, graph, keep, zero=False)
    return smaller
