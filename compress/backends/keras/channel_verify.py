"""The proof that channel pruning changed nothing but the removed channels: the masked model
(the original with those channels zeroed) and the physically smaller model must agree on real
samples. On a mismatch the offending group is found, one group at a time, and named."""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.backends.keras.channel_graph import ChannelGraph, Group
from compress.backends.keras.channel_weights import Keep, kept_positions, rebuild, zero_weights
from compress.errors import ModelError
from compress.passes.channels import check_agreement
from compress.samples import ParityInputs


def predict(model: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    return [np.asarray(output) for output in outputs]


def masked_copy(model: Any, graph: ChannelGraph, keep: Keep) -> Any:
    """A copy of the model with the removed channels zeroed (its shapes unchanged)."""
    copy = rebuild(model, graph, {})
    zero_weights(copy, graph, keep)
    return copy


def expected_outputs(
    masked: Any, graph: ChannelGraph, keep: Keep, inputs: list[np.ndarray]
) -> list[np.ndarray]:
    """The masked model's outputs, cut to the kept channels where a pruned group is an output."""
    outputs = predict(masked, inputs)
    for index, layout in enumerate(graph.outputs):
        positions = kept_positions(graph, layout, keep, outputs[index].shape[-1])
        if positions is not None:
            outputs[index] = np.take(outputs[index], positions, axis=-1)
    return outputs


def verify(
    masked: Any,
    pruned: Any,
    graph: ChannelGraph,
    keep: Keep,
    groups: list[Group],
    samples: ParityInputs,
) -> dict:
    """Figures of the agreement between the masked and the pruned model; a ModelError naming
    the group whose removal changes the outputs when they disagree."""
    inputs = samples.arrays
    expected = expected_outputs(masked, graph, keep, inputs)
    try:
        figures = check_agreement(expected, predict(pruned, inputs), "the pruned model")
    except ModelError:
        _blame(masked, graph, keep, groups, inputs)
        raise
    return {**figures, "samples": samples.origin}


def _blame(
    masked: Any, graph: ChannelGraph, keep: Keep, groups: list[Group], inputs: list[np.ndarray]
) -> None:
    """Raise for the first group that, pruned alone, already disagrees with its masked model."""
    for group in groups:
        if group.id not in keep:
            continue
        alone = {group.id: keep[group.id]}
        expected = expected_outputs(masked_copy(masked, graph, alone), graph, alone, inputs)
        actual = predict(rebuild(masked, graph, alone), inputs)
        check_agreement(expected, actual, f"group {group.name!r} ({', '.join(group.layers)})")
