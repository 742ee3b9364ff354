"""Clean-ups applied to freshly exported ONNX files."""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


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
    _name_weights_by_layer(model.graph)
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


def tidy_torchscript_export(path: Path) -> None:
    """The TorchScript exporter's counterpart of tidy_dynamo_export: its node names are module
    scopes ("/encoder/layer.0/attention/self/query/MatMul"), renamed "<module path>.<op>" as the
    dynamo exporter's are, and the transposed Linear weights it names "onnx::MatMul_123" are
    named after their layer."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.name.startswith("/"):
            node.name = node.name.strip("/").replace("/", ".")
    _name_weights_by_layer(model.graph)
    drop_initializer_value_info(model)
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


def _name_weights_by_layer(graph: onnx.GraphProto) -> None:
    """Name weights the exporter left anonymous after the layer that reads them.

    Dynamo folds a Linear's transposed weight into a new constant ("val_36") and torch's QAT
    export calls INT8 weights "_frozen_param0"; the report lists weights by layer. Such a
    weight, read (directly, or through a DequantizeLinear) by one Conv/Gemm/MatMul node named
    "<module>.<op>", becomes "<module>.weight", or "<module>.weight_quantized" for INT8 ones.
    """
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    renames = {}
    for name, tensor in initializers.items():
        route = readers.get(name, [])
        suffix = ".weight"
        if len(route) == 1 and route[0].op_type == "DequantizeLinear" and route[0].input[0] == name:
            route, suffix = readers.get(route[0].output[0], []), ".weight_quantized"
        if len(route) != 1 or len(tensor.dims) < 2:
            continue
        layer = route[0]
        if layer.op_type not in ("Conv", "Gemm", "MatMul") or "." not in layer.name:
            continue
        if "." not in name:  # parameters are "<module>.<name>"; "val_36" is the exporter's
            renames[name] = layer.name.rsplit(".", 1)[0] + suffix
    taken = set(initializers) - set(renames)
    wanted = Counter(renames.values())
    # two weights that would get one name keep the exporter's names
    renames = {old: new for old, new in renames.items() if wanted[new] == 1 and new not in taken}
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
    are renamed. A tensor whose values changed (TF folds a BatchNorm into the conv kernel) is
    named after the Keras layer in its op path instead (`_renames_by_scope`).
    """
    model = onnx.load(str(path))
    renames = _renames_by_value(model.graph, weights)
    renames.update(_renames_by_scope(model.graph, weights, renames))
    if not renames:
        return
    for tensor in model.graph.initializer:
        tensor.name = renames.get(tensor.name, tensor.name)
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]
    onnx.save(model, str(path))


def _renames_by_value(graph: onnx.GraphProto, weights: Mapping[str, np.ndarray]) -> dict[str, str]:
    by_signature: dict[tuple, list[str]] = {}
    for name, array in weights.items():
        by_signature.setdefault(_signature(array), []).append(name)
    renames = {}
    taken = {tensor.name for tensor in graph.initializer}
    for tensor in graph.initializer:
        candidates = by_signature.get(_signature(numpy_helper.to_array(tensor)), [])
        if len(candidates) == 1 and candidates[0] not in taken:
            renames[tensor.name] = candidates[0]
            taken.add(candidates[0])
    return renames


def _renames_by_scope(
    graph: onnx.GraphProto, weights: Mapping[str, np.ndarray], renamed: Mapping[str, str]
) -> dict[str, str]:
    """Name the float tensors left unnamed after the layer their op path names:
    "resnet50_1/conv1_conv_1/convolution/merged_input:0" -> "conv1_conv/kernel". A folded
    constant without a path ("const_fold_opt__12") takes the layer of the nodes reading it.

    The name is the layer's weight of the same size and rank class when there is exactly one,
    else "<layer>/bias" for a 1-D tensor or a shift (only Add/Sub read it: a folded
    BatchNorm's offset) and "<layer>/kernel" otherwise. A name that is already taken or that
    two tensors would get is not used.
    """
    by_layer: dict[str, list[str]] = {}
    for key in weights:
        by_layer.setdefault(key.rsplit("/", 1)[0], []).append(key)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    proposals = {}
    for tensor in graph.initializer:
        if tensor.name in renamed or tensor.data_type not in _FLOATS or not tensor.dims:
            continue
        reading = readers.get(tensor.name, [])
        layer = _owner(tensor.name, reading, by_layer)
        if layer is not None:
            shift = bool(reading) and all(n.op_type in ("Add", "Sub") for n in reading)
            proposals[tensor.name] = _weight_name(
                layer, list(tensor.dims), shift, by_layer[layer], weights
            )
    taken = {tensor.name for tensor in graph.initializer} | set(renamed.values())
    counts = Counter(proposals.values())
    return {old: new for old, new in proposals.items() if counts[new] == 1 and new not in taken}


def _owner(name: str, readers: list[onnx.NodeProto], layers: Collection[str]) -> str | None:
    """The layer a tensor's own path names, else the one layer all its readers' names name."""
    scope = scope_layer(name, layers)
    if scope is not None:
        return scope[0]
    owners = {scope_layer(node.name, layers) for node in readers}
    return next(iter(owners))[0] if len(owners) == 1 and None not in owners else None


def _weight_name(
    layer: str, dims: list[int], shift: bool, keys: list[str], weights: Mapping[str, np.ndarray]
) -> str:
    size, matrix = int(np.prod(dims)), len(dims) >= 2
    fits = [k for k in keys if weights[k].size == size and (weights[k].ndim >= 2) == matrix]
    if len(fits) == 1:
        return fits[0]
    return f"{layer}/{'kernel' if matrix and not shift else 'bias'}"


_FLOATS = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.BFLOAT16,
}
_SCOPE_SUFFIX = re.compile(r"_\d+$")


def scope_layer(name: str, layers: Collection[str]) -> tuple[str, str] | None:
    """(layer, rest of the path) for the first component of a TF op path that is one of
    `layers`, exactly or with the "_N" suffix TF adds to repeated name scopes
    ("model_1/norm_1/Sub/y:0" -> ("norm", "Sub/y:0")); None when no component is."""
    parts = name.split("/")
    for index, part in enumerate(parts):
        part = part.split(":")[0]
        for layer in (part, _SCOPE_SUFFIX.sub("", part)):
            if layer in layers:
                return layer, "/".join(parts[index + 1 :])
    return None


def _signature(array: np.ndarray) -> tuple:
    flat = np.sort(np.asarray(array, dtype=np.float32).ravel()) + np.float32(0.0)  # -0.0 -> 0.0
    return (flat.size, flat.tobytes())


Resolve = Callable[[str, tuple[int | None, ...], np.dtype], np.ndarray]


def fold_extra_inputs(path: Path, count: int, resolve: Resolve) -> None:
    """Keep only the first `count` graph inputs (the model's own); the others become constants.

    Keras 3's exporter declares every tensor a layer captured (Normalization's mean and
    variance) as a graph input that onnxruntime then requires. An extra input that an
    initializer of the same name backs, or that no node reads, is dropped; the value of any
    other comes from `resolve(name, shape, dtype)` (None for an unknown dim).
    """
    model = onnx.load(str(path))
    extra = list(model.graph.input)[count:]
    if not extra:
        return
    backed = {tensor.name for tensor in model.graph.initializer}
    read = {name for node in model.graph.node for name in node.input}
    for info in extra:
        if info.name in read and info.name not in backed:
            tensor_type = info.type.tensor_type
            shape = tuple(d.dim_value or None for d in tensor_type.shape.dim)
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
            value = np.asarray(resolve(info.name, shape, dtype), dtype=dtype)
            model.graph.initializer.append(numpy_helper.from_array(value, info.name))
    del model.graph.input[count:]
    onnx.save(model, str(path))


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
