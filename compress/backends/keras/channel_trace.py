"""Trace a Keras model's channels into a `ChannelGraph`: per layer kind, how its output channels
relate to its input channels. Producers start a group, followers carry their input's layout,
joins merge groups, Concatenate appends layouts, Flatten interleaves them. Any other layer, or a
known one used in a way this module cannot slice correctly, leaves the groups it reads whole."""

from __future__ import annotations

from typing import Any

from compress.backends.keras.channel_calls import Call, Ref, call_counts, model_calls
from compress.backends.keras.channel_graph import ChannelGraph, LayerChannels, Layout, Segment
from compress.errors import ModelError, message_line

PRODUCERS = {
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Dense",
    "SeparableConv1D",
    "SeparableConv2D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
}
TRANSPOSED = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}
SEPARABLE = {"SeparableConv1D", "SeparableConv2D"}
DEPTHWISE = {"DepthwiseConv1D", "DepthwiseConv2D"}
#: Layers whose output channel c depends on input channel c only.
FOLLOWERS = {
    "BatchNormalization", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Activation",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity",
    *(f"{kind}{d}D" for kind in ("ZeroPadding", "Cropping", "UpSampling") for d in (1, 2, 3)),
    *(f"{kind}Pooling{d}D" for kind in ("Max", "Average") for d in (1, 2, 3)),
    *(f"Global{kind}Pooling{d}D" for kind in ("Max", "Average") for d in (1, 2, 3)),
    *DEPTHWISE,
}  # fmt: skip
JOINS = {"Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"}
#: Activations that act on each value alone (softmax mixes the channels).
ELEMENTWISE = {
    "linear", "relu", "relu6", "sigmoid", "tanh", "elu", "selu", "gelu", "swish", "silu",
    "hard_sigmoid", "hard_silu", "hard_swish", "leaky_relu", "softplus", "softsign",
    "exponential", "mish", "celu",
}  # fmt: skip
#: The weights `channel_weights` knows how to slice.
KNOWN_WEIGHTS = {
    "kernel", "bias", "depthwise_kernel", "pointwise_kernel",
    "gamma", "beta", "moving_mean", "moving_variance", "alpha",
}  # fmt: skip
WHY = {
    "LayerNormalization": "normalizes over the channels (removing some changes the others)",
    "GroupNormalization": "normalizes over groups of channels",
    "UnitNormalization": "normalizes over the channels",
    "Softmax": "mixes the channels (softmax)",
}


def weight_name(variable: Any) -> str:
    """A variable's short name: "kernel" for Keras 3's "kernel" and tf-keras' "c1/kernel:0"."""
    return variable.name.split("/")[-1].split(":")[0]


def trace(model: Any, sequential: bool) -> ChannelGraph:
    """The channel graph of a Sequential or Functional model."""
    try:
        config = model.get_config()
    except (NotImplementedError, TypeError, ValueError) as exc:
        raise ModelError(
            f"prune: channel pruning reads the model's layer graph from its config, and this "
            f"{type(model).__name__} cannot give one ({message_line(exc)})"
        ) from exc
    calls, inputs, outputs = model_calls(config, sequential)
    live = {layer.name: layer for layer in model.layers}
    counts = call_counts(calls)
    graph = ChannelGraph()
    tensors: dict[Ref, Layout | None] = dict.fromkeys(inputs)
    for call in calls:
        layouts = [tensors.get(ref) for ref in call.inputs]
        tensors[call.output] = _step(graph, call, live[call.layer], layouts, counts[call.layer])
    for ref in outputs:
        layout = tensors.get(ref)
        graph.outputs.append(layout)
        if layout is not None:
            graph.at_output.update(s.group for s in layout.segments if s.group is not None)
    return graph


def _step(
    graph: ChannelGraph, call: Call, layer: Any, layouts: list[Layout | None], calls: int
) -> Layout | None:
    """The layout of one call's output; groups it cannot follow are left whole."""
    if all(layout is None for layout in layouts) and call.kind not in PRODUCERS:
        return None
    problem = _problem(call, layer, layouts, calls)
    if problem is not None:
        for layout in layouts:
            graph.leave_whole(layout, f"reaches {call.layer} ({call.kind}), which {problem}")
        return None
    if call.kind in PRODUCERS:
        return _produce(graph, call, layer, layouts[0])
    if call.kind in JOINS:
        return _join(graph, call, layouts)
    if call.kind == "Concatenate":
        return _concatenate(graph, call, layer, layouts)
    if call.kind == "Flatten":
        assert layouts[0] is not None
        return Layout(layouts[0].segments, flat=True)
    if layer.weights:
        graph.layers[call.layer] = LayerChannels(call.layer, call.kind, layouts[0], layouts[0])
    return layouts[0]


def _problem(call: Call, layer: Any, layouts: list[Layout | None], calls: int) -> str | None:
    """Why this call cannot carry pruned channels, or None."""
    kind, config = call.kind, call.config
    if kind not in PRODUCERS | FOLLOWERS | JOINS | {"Concatenate", "Flatten"}:
        if hasattr(layer, "layers"):
            return "is a nested model"
        return WHY.get(kind, "channel pruning cannot see through")
    if calls > 1:
        return "is called more than once (shared weights)"
    if len(layouts) != 1 and kind not in JOINS | {"Concatenate"}:
        return "takes several inputs"
    if getattr(layer, "data_format", None) == "channels_first":
        return "works channels-first"
    unknown = sorted({weight_name(w) for w in layer.weights} - KNOWN_WEIGHTS)
    if unknown:
        return f"holds weights ({', '.join(unknown)}) that channel pruning does not slice"
    if config.get("groups", 1) != 1:
        return "is a grouped convolution"
    if kind in DEPTHWISE and config.get("depth_multiplier", 1) != 1:
        return f"has depth_multiplier {config['depth_multiplier']}"
    activation = _activation(layer)
    if kind == "Activation" and activation not in ELEMENTWISE:
        return f"applies {activation!r}, which may mix the channels"
    if kind == "BatchNormalization" and not _on_channels(layer, config.get("axis", -1)):
        return f"normalizes axis {config.get('axis')}, not the channels"
    return None


def _activation(layer: Any) -> str:
    function = getattr(layer, "activation", None)
    return getattr(function, "__name__", type(function).__name__) if function else "linear"


def _on_channels(layer: Any, axis: Any) -> bool:
    """True when a normalization `axis` (an int or a one-element list) is the last axis."""
    axes = list(axis) if isinstance(axis, list | tuple) else [axis]
    if len(axes) != 1:
        return False
    try:
        rank = len(layer.input.shape)
    except (AttributeError, ValueError):
        return False
    return axes[0] in (-1, rank - 1)


def _produce(graph: ChannelGraph, call: Call, layer: Any, layout: Layout | None) -> Layout:
    """A producer's output is a new group; its input layout is read by its kernel rows."""
    size = int(call.config["filters"] if "filters" in call.config else call.config["units"])
    group = graph.new_group(call.layer, size)
    inner = int(call.config.get("depth_multiplier", 1)) if call.kind in SEPARABLE else 1
    output = Layout((Segment(group, size),))
    rows = _input_rows(layer, call.kind)
    if layout is not None and not _fits(layout, rows, inner):
        graph.leave_whole(layout, f"reaches {call.layer}, whose {rows} inputs do not match")
        layout = None
    activation = _activation(layer)
    if activation not in ELEMENTWISE:
        graph.reasons[group].append(f"{call.layer} applies {activation!r} over its channels")
    graph.layers[call.layer] = LayerChannels(call.layer, call.kind, layout, output, inner)
    return output


def _input_rows(layer: Any, kind: str) -> int:
    if kind in SEPARABLE:
        return int(layer.pointwise_kernel.shape[-2])
    return int(layer.kernel.shape[-1 if kind in TRANSPOSED else -2])


def _fits(layout: Layout, rows: int, inner: int) -> bool:
    width = layout.channels * inner
    return rows == width or (layout.flat and rows % width == 0)


def _join(graph: ChannelGraph, call: Call, layouts: list[Layout | None]) -> Layout | None:
    """Element-wise joins: every input's channel i is the output's channel i, so their groups
    merge (a one-channel input broadcasts and keeps its single channel)."""
    where = f"{call.layer} ({call.kind})"
    if any(layout is None for layout in layouts):
        for layout in layouts:
            graph.leave_whole(layout, f"is joined in {where} with channels that cannot be pruned")
        return None
    present = [layout for layout in layouts if layout is not None]  # all of them, typed
    wide = [layout for layout in present if layout.channels > 1] or present
    first = wide[0]
    shape = ([s.size for s in first.segments], first.flat)
    if any(([s.size for s in other.segments], other.flat) != shape for other in wide[1:]):
        for layout in present:
            graph.leave_whole(layout, f"is joined in {where} with differently split channels")
        return None
    for other in wide[1:]:
        for mine, theirs in zip(first.segments, other.segments, strict=True):
            if mine.group is None or theirs.group is None:
                pair = Layout((mine, theirs))
                graph.leave_whole(pair, f"is joined in {where} with channels that cannot be pruned")
            else:
                graph.union(mine.group, theirs.group)
    return first


def _concatenate(
    graph: ChannelGraph, call: Call, layer: Any, layouts: list[Layout | None]
) -> Layout | None:
    """On the channel axis the output layout is the inputs' layouts one after the other (an
    input that cannot be pruned is a fixed segment); on another axis it is a join."""
    try:
        shapes = [tuple(tensor.shape) for tensor in layer.input]
    except (AttributeError, TypeError, ValueError):
        shapes = []
    axis = call.config.get("axis", -1)
    if not shapes or any(shape[-1] is None for shape in shapes):
        for layout in layouts:
            graph.leave_whole(layout, f"reaches {call.layer}, whose input shapes are unknown")
        return None
    if axis not in (-1, len(shapes[0]) - 1):
        return _join(graph, call, layouts)
    if any(layout is not None and layout.flat for layout in layouts):
        for layout in layouts:
            graph.leave_whole(layout, f"is concatenated flat in {call.layer}")
        return None
    segments = []
    for layout, shape in zip(layouts, shapes, strict=True):
        segments.extend(layout.segments if layout else (Segment(None, int(shape[-1])),))
    return Layout(tuple(segments))
