"""AWQ (Lin et al., 2023): activation-aware scales folded into the op before each MatMul.

For the MatMuls that read one tensor (q, k and v; gate and up), the input channels that carry
large activations matter most; scaling their weight rows up by `s` (and the input down by `s`)
before rounding gives those rows a finer step. `s = mean|x|^alpha`, alpha searched on the
calibration inputs for the smallest output error after round to nearest. The division by `s`
is folded into the op producing the input (a normalization's scale, a Mul by a constant vector,
or the columns of the MatMul feeding a gated product, as the MLP's up projection does), so the
quantized graph has no extra op; a group whose input comes from anything else is left as is.

`Smoothing` remembers what changed by the weights' original values, so that the generation
decoder, which holds the same weights (q, k and v fused), is smoothed the same way.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from compress.backends.onnx.blocks import add_initializer, column_keys, rtn_grid
from compress.backends.onnx.sequential import SequentialRunner, batches_of
from compress.backends.onnx.weight_only import Weight, constant_weight

#: The alphas tried (0: no scaling, 1: scales as large as the activations).
ALPHAS = np.linspace(0.0, 1.0, 21)
#: Calibration rows (tokens) the search scores on.
SEARCH_ROWS = 2048
#: Normalizations whose per-channel scale (and bias) can absorb 1/s: op -> (scale, bias) input.
NORMS = {
    "LayerNormalization": (1, 2),
    "SimplifiedLayerNormalization": (1, None),
    "SkipLayerNormalization": (2, 3),
    "SkipSimplifiedLayerNormalization": (2, None),
}


@dataclass
class Smoothing:
    """What AWQ changed: each smoothed column by its original column's fingerprint, and the
    input scales of each group by the fingerprint of its weights' first original columns."""

    columns: dict[bytes, np.ndarray] = field(default_factory=dict)
    scales: dict[bytes, np.ndarray] = field(default_factory=dict)
    alphas: dict[str, float] = field(default_factory=dict)


def matmul_groups(
    graph: onnx.GraphProto, skipped: Collection[str]
) -> dict[str, list[onnx.NodeProto]]:
    """The MatMuls with a constant weight (not `skipped`), by the tensor they multiply, in
    graph order."""
    initializers = {t.name for t in graph.initializer}
    groups: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        if (
            node.op_type == "MatMul"
            and node.name not in skipped
            and constant_weight(graph, node.input[1])
            and node.input[0] not in initializers
        ):
            groups.setdefault(node.input[0], []).append(node)
    return groups


def awq_smooth(
    model: onnx.ModelProto,
    calibration: list[np.ndarray],
    batch: int,
    bits: int,
    block: int,
    symmetric: bool,
    skipped: Collection[str],
) -> Smoothing:
    """Smooth `model` in place (its float function unchanged); what was done."""
    graph = model.graph
    names = [i.name for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    runner = SequentialRunner(model, list(batches_of(names, calibration, batch)))
    smoothing = Smoothing()
    originals: dict[str, np.ndarray] = {}
    for source, nodes in matmul_groups(graph, skipped).items():
        fold = _fold(graph, source, nodes)
        if fold is None or not all(_exclusive(graph, node) for node in nodes):
            continue
        rows = _rows(runner.tensor(source))
        weights = [constant_weight(graph, node.input[1]) for node in nodes]
        arrays = [w.array(graph) for w in weights if w is not None]
        for weight, array in zip(weights, arrays, strict=True):
            assert weight is not None
            originals.setdefault(weight.initializer, array)
        alpha, scales = _search(rows, arrays, bits, block, symmetric)
        smoothing.alphas[nodes[0].name or source] = round(float(alpha), 2)
        if alpha == 0:
            continue
        for weight, array in zip(weights, arrays, strict=True):
            assert weight is not None
            key = column_keys(originals[weight.initializer][:, :1])[0]
            smoothing.scales[key] = scales
            _store(graph, weight, array * scales[:, None], runner)
        fold(scales, originals, runner)
    for name, original in originals.items():
        current = Weight(name, False).array(graph)  # never read transposed: see _exclusive
        for key, column in zip(column_keys(original), current.T, strict=True):
            smoothing.columns[key] = column
    return smoothing


def _exclusive(graph: onnx.GraphProto, node: onnx.NodeProto) -> bool:
    """Whether the MatMul's weight is an initializer that it alone reads, directly: a table
    tied to the lm_head (read through a Transpose, and by the embedding Gather) must keep its
    values."""
    weight = constant_weight(graph, node.input[1])
    if weight is None or weight.transposed:
        return False
    return sum(1 for n in graph.node for name in n.input if name == weight.initializer) == 1


def apply_smoothing(model: onnx.ModelProto, smoothing: Smoothing) -> int:
    """Smooth a graph holding the same weights (a generation decoder): each weight's columns
    replaced by their smoothed values, each group's 1/s folded into the op before it (a Mul by
    1/s inserted where nothing can absorb it, so the graph stays correct). The number of
    weights changed."""
    graph = model.graph
    changed = 0
    for source, nodes in matmul_groups(graph, ()).items():
        weights = [constant_weight(graph, node.input[1]) for node in nodes]
        arrays = [w.array(graph) for w in weights if w is not None]
        found = [smoothing.scales.get(column_keys(a[:, :1])[0]) for a in arrays]
        scales = next((s for s in found if s is not None), None)
        for weight, array in zip(weights, arrays, strict=True):
            assert weight is not None
            keys = column_keys(array)
            if all(key in smoothing.columns for key in keys):
                columns = np.stack([smoothing.columns[key] for key in keys], axis=1)
                if not np.array_equal(columns, array):
                    _store(graph, weight, columns, None)
                    changed += 1
        if scales is None:
            continue
        fold = _fold(graph, source, nodes)
        if fold is None:
            _divide_input(graph, source, nodes, scales)
        elif fold.kind != "columns":  # the columns were replaced above
            fold(scales, {}, None)
    return changed


@dataclass
class _Fold:
    """Divides the input of a group by `s` in the op that produces it."""

    kind: str
    graph: onnx.GraphProto
    target: str  # the initializer (a norm's scale, a Mul's vector) or the MatMul's weight
    bias: str | None = None

    def __call__(
        self,
        scales: np.ndarray,
        originals: dict[str, np.ndarray],
        runner: SequentialRunner | None,
    ) -> None:
        if self.kind == "columns":
            weight = constant_weight(self.graph, self.target)
            assert weight is not None
            array = weight.array(self.graph)
            originals.setdefault(weight.initializer, array)
            _store(self.graph, weight, array / scales[None, :], runner)
            return
        for name in (self.target, self.bias):
            if name is not None:
                tensor = _initializer(self.graph, name)
                values = numpy_helper.to_array(tensor)
                tensor.CopyFrom(
                    numpy_helper.from_array((values / scales).astype(values.dtype), name)
                )
                if runner is not None:
                    runner.set_weight(name, numpy_helper.to_array(tensor))


def _fold(graph: onnx.GraphProto, source: str, nodes: list[onnx.NodeProto]) -> _Fold | None:
    """How the input `source` of the group `nodes` can absorb 1/s, or None."""
    readers = [n for n in graph.node if source in n.input]
    if len(readers) != len(nodes) or any(n.op_type != "MatMul" for n in readers):
        return None  # something else reads the input too
    producer = next((n for n in graph.node if source in n.output), None)
    if producer is None:
        return None
    width = constant_weight(graph, nodes[0].input[1])
    assert width is not None
    channels = width.array(graph).shape[0]
    if producer.op_type in NORMS and producer.output[0] == source:
        scale, bias = NORMS[producer.op_type]
        names = [
            producer.input[i] if i is not None and i < len(producer.input) else None
            for i in (scale, bias)
        ]
        if all(n is None or _vector(graph, n, channels) for n in names) and names[0]:
            return _Fold("norm", graph, *_own(graph, producer, names))
        return None
    if producer.op_type != "Mul":
        return None
    for name in producer.input:
        if _vector(graph, name, channels):
            (own,) = _own(graph, producer, [name])
            return _Fold("vector", graph, own)
    for name in producer.input:  # a gated product: the MatMul feeding one side of it
        upstream = next((n for n in graph.node if name in n.output), None)
        readers_of = [n for n in graph.node if name in n.input]
        if (
            upstream is not None
            and upstream.op_type == "MatMul"
            and len(readers_of) == 1
            and constant_weight(graph, upstream.input[1]) is not None
        ):
            return _Fold("columns", graph, upstream.input[1])
    return None


def _own(graph: onnx.GraphProto, node: onnx.NodeProto, names: list[str | None]) -> list:
    """`names` (inputs of `node`) as initializers that `node` alone reads: a shared one is
    copied first, so that folding into it changes nothing else."""
    owned: list[str | None] = []
    for name in names:
        if name is None:
            owned.append(None)
            continue
        readers = sum(1 for n in graph.node for i in n.input if i == name)
        if readers > 1:
            copy = add_initializer(graph, numpy_helper.to_array(_initializer(graph, name)), name)
            node.input[list(node.input).index(name)] = copy
            name = copy
        owned.append(name)
    return owned


def _vector(graph: onnx.GraphProto, name: str, channels: int) -> bool:
    """Whether `name` is a float initializer holding one value per channel."""
    tensor = next((t for t in graph.initializer if t.name == name), None)
    if tensor is None or tensor.data_type not in (onnx.TensorProto.FLOAT,):
        return False
    dims = [d for d in tensor.dims if d != 1]
    return dims == [channels]


def _initializer(graph: onnx.GraphProto, name: str) -> onnx.TensorProto:
    return next(t for t in graph.initializer if t.name == name)


def _store(
    graph: onnx.GraphProto, weight: Weight, array: np.ndarray, runner: SequentialRunner | None
) -> None:
    """Write `array [K, N]` into the weight's initializer (transposed back if it is read so)."""
    stored = np.ascontiguousarray((array.T if weight.transposed else array).astype(np.float32))
    _initializer(graph, weight.initializer).CopyFrom(
        numpy_helper.from_array(stored, weight.initializer)
    )
    if runner is not None:
        runner.set_weight(weight.initializer, stored)


def _divide_input(
    graph: onnx.GraphProto, source: str, nodes: list[onnx.NodeProto], scales: np.ndarray
) -> None:
    """A Mul by 1/s before the group (where no op can absorb it)."""
    inverse = add_initializer(graph, (1 / scales).astype(np.float32), f"{source}_awq_inverse")
    scaled = f"{source}_awq"
    mul = helper.make_node("Mul", [source, inverse], [scaled], name=scaled)
    first = min(list(graph.node).index(n) for n in nodes)
    graph.node.insert(first, mul)
    for node in nodes:
        node.input[0] = scaled


def _rows(batches: list[np.ndarray]) -> np.ndarray:
    """Up to SEARCH_ROWS rows (tokens) of a MatMul input, drawn with a fixed seed."""
    width = batches[0].shape[-1]
    rows = np.concatenate([b.reshape(-1, width) for b in batches]).astype(np.float32)
    if len(rows) > SEARCH_ROWS:
        rows = rows[np.random.default_rng(0).choice(len(rows), SEARCH_ROWS, replace=False)]
    return rows


def _search(
    rows: np.ndarray, weights: list[np.ndarray], bits: int, block: int, symmetric: bool
) -> tuple[float, np.ndarray]:
    """The alpha (and its scales) with the smallest output error of the group's weights after
    round to nearest."""
    activity = np.maximum(np.abs(rows).mean(axis=0), 1e-8)
    references = [rows @ w for w in weights]
    best = (np.inf, 0.0, np.ones_like(activity))
    for alpha in ALPHAS:
        scales = activity**alpha
        scales = scales / np.sqrt(scales.max() * scales.min())
        error = 0.0
        for weight, reference in zip(weights, references, strict=True):
            quantized = rtn_grid(weight * scales[:, None], bits, block, symmetric).dequantized()
            error += float(np.mean((rows @ (quantized / scales[:, None]) - reference) ** 2))
        if error < best[0]:
            best = (error, float(alpha), scales.astype(np.float32))
    return best[1], best[2]
