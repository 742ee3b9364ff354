"""Multiply-accumulates (MACs) of one inference of an ONNX model, counted on the graph.

Counted: convolutions (Conv, ConvTranspose, grouped and depthwise alike), matrix products
(MatMul with batched/broadcast operands, Gemm, Einsum of two operands) and recurrent layers
(RNN, GRU, LSTM), and their quantized forms (QLinearConv, ConvInteger, QLinearMatMul,
MatMulInteger, QGemm, MatMulNBits, onnxruntime's dynamic and fused ops; QDQ graphs are plain
float ops reading DequantizeLinear), so a quantized model counts the work of its float model.
Elementwise ops, activations, softmax, pooling, normalizations and bias additions count 0: the
usual MACs convention.

Shapes come from one onnxruntime run on the given input shapes, every operand of a counted node
fetched as an extra graph output. onnx's shape inference (with or without data propagation)
loses the computed Reshape shapes of transformer exports (a torchscript BERT: no MatMul shape
known), onnxruntime's symbolic inference needs a handler for every op and sympy; a run is exact
for any graph onnxruntime can run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from compress.errors import ModelError, message_line
from compress.onnx.naming import layer_name

Shape = tuple[int, ...]
#: shape of a node's tensor by name; raises ModelError naming the node when unknown
ShapeOf = Callable[[str], Shape]

_CONV_WEIGHT = {"Conv": 1, "FusedConv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMULS = {
    "MatMul",
    "MatMulInteger",
    "QLinearMatMul",
    "MatMulNBits",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "FusedMatMul",
    "Gemm",
    "FusedGemm",
    "QGemm",
}
_RECURRENT = {"RNN", "GRU", "LSTM", "DynamicQuantizeLSTM"}
#: Fused ops that do MACs this module does not count: refused rather than counted as 0.
_UNCOUNTED = {
    "Attention",
    "MultiHeadAttention",
    "GroupQueryAttention",
    "QAttention",
    "PackedAttention",
    "PackedMultiHeadAttention",
    "DecoderMaskedMultiHeadAttention",
}
COUNTED_OPS = frozenset({*_CONV_WEIGHT, "ConvTranspose", *_MATMULS, *_RECURRENT, "Einsum"})


def count_macs(path: Path, inputs: Mapping[str, Shape | np.ndarray]) -> int:
    """MACs of one run of the model at `path` on `inputs` (graph input name -> shape, or the
    array to feed). Give batch 1 for the MACs of one sample. Inputs given as shapes are filled
    with ones (integers: ones, `*type_ids` zeros, valid ids and an unmasked attention mask).
    ModelError when the model cannot be run on them, or a node's MACs cannot be counted."""
    model = onnx.load(str(path))
    _refuse_hidden_work(model.graph)
    nodes = [node for node in model.graph.node if node.op_type in COUNTED_OPS]
    shapes = _shapes(model, nodes, _feeds(model, inputs), path)
    total = 0
    for node in nodes:
        total += _count(node, _shape_of(node, shapes))
    return total


def macs_by_layer(path: Path, inputs: Mapping[str, Shape | np.ndarray]) -> dict[str, int]:
    """MACs of one run per layer: each counted node's MACs credited to the layer of its weight
    initializer (the report's layer naming); nodes without one (attention's products) are
    left out."""
    model = onnx.load(str(path))
    _refuse_hidden_work(model.graph)
    weights = {tensor.name for tensor in model.graph.initializer}
    nodes = [node for node in model.graph.node if node.op_type in COUNTED_OPS]
    shapes = _shapes(model, nodes, _feeds(model, inputs), path)
    layers: dict[str, int] = {}
    for node in nodes:
        weight = next((name for name in node.input[1:] if name in weights), None)
        if weight is not None:
            layer = layer_name(weight)
            layers[layer] = layers.get(layer, 0) + _count(node, _shape_of(node, shapes))
    return layers


def _count(node: onnx.NodeProto, shape: ShapeOf) -> int:
    op = node.op_type
    if op in _CONV_WEIGHT:  # Y [N, C_out, ...] x W [C_out, C_in/groups, k...]
        return _prod(shape(node.output[0])) * _prod(shape(node.input[_CONV_WEIGHT[op]])[1:])
    if op == "ConvTranspose":  # X [N, C_in, ...] x W [C_in, C_out/groups, k...]
        return _prod(shape(node.input[0])) * _prod(shape(node.input[1])[1:])
    if op in _MATMULS:  # A [..., M, K] (transA: [K, M]) -> Y [..., M, N]
        a = shape(node.input[0])
        k = a[-2] if _attribute(node, "transA", 0) else a[-1]
        return _prod(shape(node.output[0])) * k
    if op in _RECURRENT:  # per step and sample: W [dirs, gates*H, I] and R [dirs, gates*H, H]
        x = shape(node.input[0])
        return x[0] * x[1] * (_prod(shape(node.input[1])) + _prod(shape(node.input[2])))
    return _einsum(node, shape)


def _einsum(node: onnx.NodeProto, shape: ShapeOf) -> int:
    """A contraction of two operands costs the product of every index's size; one operand
    (a transpose, a sum) costs 0."""
    operands = [name for name in node.input if name]
    if len(operands) == 1:
        return 0
    equation = str(_attribute(node, "equation", "")).replace(" ", "")
    terms = equation.split("->")[0].split(",")
    if len(operands) != 2 or len(terms) != 2:
        raise ModelError(
            f"cannot count the MACs of node {node.name!r} (Einsum {equation!r}): only "
            "contractions of two operands are counted"
        )
    sizes: dict[str, int] = {}
    batch: list[Shape] = []
    for term, name in zip(terms, operands, strict=True):
        dims = shape(name)
        head, _, tail = term.partition("...")
        rest = len(dims) - len(head) - len(tail)
        batch.append(dims[len(head) : len(head) + rest] if "..." in term else ())
        named = dims[: len(head)] + dims[len(dims) - len(tail) :]
        for letter, size in zip(head + tail, named, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), size)
    return _prod(tuple(sizes.values())) * _prod(np.broadcast_shapes(*batch))


def _refuse_hidden_work(graph: onnx.GraphProto) -> None:
    """Counted ops inside If/Loop/Scan bodies, and fused attention ops, are refused: counting
    them as 0 would be silently wrong."""
    for node in graph.node:
        if node.op_type in _UNCOUNTED:
            raise ModelError(
                f"cannot count the MACs of node {node.name!r}: op {node.op_type} is not counted"
            )
        for attribute in node.attribute:
            bodies = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else []
            bodies += list(attribute.graphs)
            for body in bodies:
                inner = next((n for n in body.node if n.op_type in COUNTED_OPS), None)
                if inner is not None:
                    raise ModelError(
                        f"cannot count the MACs of node {inner.name!r} ({inner.op_type}): it is "
                        f"inside the body of node {node.name!r} ({node.op_type})"
                    )
                _refuse_hidden_work(body)


def _feeds(model: onnx.ModelProto, inputs: Mapping[str, Shape | np.ndarray]) -> dict:
    """An array per graph input: the one given, or ones (zeros for `*type_ids`) of the shape."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    names = {i.name for i in graph_inputs}
    unknown = sorted(set(inputs) - names)
    if unknown:
        raise ModelError(f"count_macs: the model has no input {unknown[0]!r}")
    feeds = {}
    for value in graph_inputs:
        if value.name not in inputs:
            raise ModelError(f"count_macs: no shape given for input {value.name!r}")
        given = inputs[value.name]
        if isinstance(given, np.ndarray):
            feeds[value.name] = given
            continue
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        fill = 0 if value.name.endswith("type_ids") else 1
        feeds[value.name] = np.full(tuple(given), fill, dtype=dtype)
    return feeds


def _shapes(
    model: onnx.ModelProto, nodes: list[onnx.NodeProto], feeds: dict, path: Path
) -> dict[str, Shape]:
    """Shapes of every operand and first output of `nodes`: initializers as stored, the rest
    from one onnxruntime run with them added as graph outputs."""
    shapes: dict[str, Shape] = {name: tuple(array.shape) for name, array in feeds.items()}
    shapes.update({tensor.name: tuple(tensor.dims) for tensor in model.graph.initializer})
    wanted = {name for node in nodes for name in (*node.input, node.output[0]) if name}
    fetched = sorted(wanted - set(shapes))
    if not fetched:
        return shapes
    outputs = {value.name for value in model.graph.output}
    model.graph.output.extend(
        onnx.ValueInfoProto(name=name) for name in fetched if name not in outputs
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        arrays = session.run(fetched, feeds)
    except Exception as exc:
        given = ", ".join(f"{name} {list(array.shape)}" for name, array in feeds.items())
        raise ModelError(
            f"cannot count the MACs of {path.name}: onnxruntime failed on inputs {given}: "
            f"{message_line(exc)}"
        ) from exc
    shapes.update(
        {name: tuple(np.shape(array)) for name, array in zip(fetched, arrays, strict=True)}
    )
    return shapes


def _shape_of(node: onnx.NodeProto, shapes: dict[str, Shape]) -> ShapeOf:
    def shape(name: str) -> Shape:
        if name not in shapes:
            raise ModelError(
                f"cannot count the MACs of node {node.name!r} ({node.op_type}): the shape of "
                f"{name!r} is unknown"
            )
        return shapes[name]

    return shape


def _attribute(node: onnx.NodeProto, name: str, default: object) -> object:
    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _prod(dims: Shape) -> int:
    return int(np.prod(dims, dtype=np.int64)) if dims else 1
