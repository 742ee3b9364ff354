"""Clean-ups applied to freshly exported ONNX files."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


def tidy_dynamo_export(path: Path) -> None:
    """Name nodes after their module, then drop per-node exporter metadata and value_info
    entries that repeat initializer shapes.

    Dynamo names nodes after aten ops ("node_conv2d_1"); the module path ("conv2.conv2d") is what
    a user writes in `ignore`. The metadata leaks the exporting machine's file paths (stack
    traces) and makes artifacts differ between machines; the repeated shapes go stale when a
    quantizer transposes a weight, and onnxruntime's quantizer then fails shape inference.
    Everything that affects execution stays.
    """
    model = onnx.load(str(path))
    _name_nodes_by_scope(model.graph)
    _name_quantized_weights(model.graph)
    drop_initializer_value_info(model)
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for item in [*graph.node, *graph.input, *graph.output, *graph.value_info]:
            del item.metadata_props[:]
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    graphs.append(attribute.g)
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    graphs.extend(attribute.graphs)
    onnx.save(model, str(path))


def _name_nodes_by_scope(graph: onnx.GraphProto) -> None:
    """Rename nodes "<module path>.<op>" from the exporter's name-scope metadata, which lists
    every enclosing module's full path, then the op: ['', 'features', 'features.1', 'conv2d']."""
    taken: set[str] = set()
    for node in graph.node:
        scopes = next(
            (p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), None
        )
        if not scopes:
            continue
        parts = [part for part in ast.literal_eval(scopes) if part]
        name = ".".join(parts[-2:]) or node.name
        unique, count = name, 1
        while unique in taken:
            unique, count = f"{name}_{count}", count + 1
        taken.add(unique)
        node.name = unique


def _name_quantized_weights(graph: onnx.GraphProto) -> None:
    """Name INT8 weights "<module>.weight_quantized" after the layer that reads them through a
    DequantizeLinear (torch's QAT export calls them "_frozen_param0", ...)."""
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    readers = {name: node for node in graph.node for name in node.input[1:2]}
    renames = {}
    for node in graph.node:
        source = node.input[0] if node.op_type == "DequantizeLinear" else None
        layer = readers.get(node.output[0]) if source in initializers else None
        if layer is not None and layer.op_type in ("Conv", "Gemm", "MatMul") and "." in layer.name:
            renames[source] = f"{layer.name.rsplit('.', 1)[0]}.weight_quantized"
    if len(set(renames.values())) != len(renames):
        return  # two weights would get one name: keep the exporter's
    for tensor in graph.initializer:
        tensor.name = renames.get(tensor.name, tensor.name)
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]


def drop_initializer_value_info(model: onnx.ModelProto) -> None:
    """Remove value_info entries describing initializers (shape inference recreates them)."""
    initializers = {tensor.name for tensor in model.graph.initializer}
    kept = [info for info in model.graph.value_info if info.name not in initializers]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def name_initializers(path: Path, weights: Mapping[str, np.ndarray]) -> None:
    """Rename initializers after the framework weights they hold (e.g. "conv1/kernel").

    Converters name weights after graph operations ("sequential/conv1/Conv2D/ReadVariableOp:0")
    and may transpose them, so tensors are matched by their sorted values; only unique matches
    are renamed.
    """
    model = onnx.load(str(path))
    by_signature: dict[tuple, list[str]] = {}
    for name, array in weights.items():
        by_signature.setdefault(_signature(array), []).append(name)
    renames = {}
    taken = {tensor.name for tensor in model.graph.initializer}
    for tensor in model.graph.initializer:
        candidates = by_signature.get(_signature(numpy_helper.to_array(tensor)), [])
        if len(candidates) == 1 and candidates[0] not in taken:
            renames[tensor.name] = candidates[0]
            taken.add(candidates[0])
    if not renames:
        return
    for tensor in model.graph.initializer:
        tensor.name = renames.get(tensor.name, tensor.name)
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]
    onnx.save(model, str(path))


def _signature(array: np.ndarray) -> tuple:
    flat = np.sort(np.asarray(array, dtype=np.float32).ravel()) + np.float32(0.0)  # -0.0 -> 0.0
    return (flat.size, flat.tobytes())


def fold_batch_reshapes(path: Path) -> int:
    """Give Reshape nodes a constant shape when only the batch dimension is dynamic.

    Keras 3's exporter computes Flatten's target shape at run time (Shape, Gather, Slice,
    Concat, Cast...): six extra nodes per Flatten that cost latency at small batch sizes and
    bytes in the file. Shape inference knows the result, so the chain becomes [-1, d1, ...] and
    the dead nodes are removed. Returns the number of Reshapes folded.
    """
    model = onnx.load(str(path))
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {
        info.name: info.type.tensor_type.shape.dim
        for info in [*inferred.graph.value_info, *inferred.graph.output]
    }
    constants = {tensor.name for tensor in model.graph.initializer}
    folded = 0
    for node in model.graph.node:
        dims = shapes.get(node.output[0]) if node.op_type == "Reshape" else None
        if not dims or node.input[1] in constants:
            continue
        rest = [dim.dim_value for dim in dims[1:]]
        if not all(value > 0 for value in rest):
            continue
        name = f"{node.output[0]}_static_shape"
        model.graph.initializer.append(
            numpy_helper.from_array(np.array([-1, *rest], dtype=np.int64), name)
        )
        node.input[1] = name
        folded += 1
    if folded:
        _remove_dead_nodes(model)
        onnx.save(model, str(path))
    return folded


def _remove_dead_nodes(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nobody reads, then initializers nobody reads."""
    outputs = {output.name for output in model.graph.output}
    while True:
        read = {name for node in model.graph.node for name in node.input} | outputs
        alive = [node for node in model.graph.node if any(o in read for o in node.output)]
        if len(alive) == len(model.graph.node):
            break
        del model.graph.node[:]
        model.graph.node.extend(alive)
    read = {name for node in model.graph.node for name in node.input} | outputs
    kept = [tensor for tensor in model.graph.initializer if tensor.name in read]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
