"""Read what an ONNX file holds: weights, their sparsity and dtype, and side files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from compress.errors import ModelError, UnsafeModelError, message_line

#: Integer tensors of these types are shapes and indices, not weights.
_INDEX_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}
#: Tensors of these types are never weights (attention masks, conditions).
_NEVER_WEIGHTS = {onnx.TensorProto.BOOL, onnx.TensorProto.STRING}


@dataclass(frozen=True)
class TensorStats:
    name: str
    shape: tuple[int, ...]
    dtype: str
    params: int
    zeros: int
    #: output channels of the layer this is the weight of (None: not a Conv/MatMul/Gemm weight)
    channels: int | None = None


def check(path: Path) -> None:
    """Run onnx.checker on the file (external data included); ModelError on failure."""
    try:
        onnx.checker.check_model(str(path), full_check=False)
    except (onnx.checker.ValidationError, OSError, ValueError) as exc:
        first = message_line(exc)
        raise ModelError(f"{path.name} is not a valid ONNX model: {first}") from exc


def external_files(path: Path) -> list[Path]:
    """Side files holding external tensor data, as named inside the model."""
    model = onnx.load(str(path), load_external_data=False)
    locations = set()
    for tensor in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            locations.add(entries["location"])
    return [path.parent / location for location in sorted(locations)]


def weight_tensors(path: Path) -> list[TensorStats]:
    """Every weight tensor: initializers and Constant-node tensors, without shape/index tensors
    and quantization scales/zero points. Packed int4 weights (MatMulNBits) count as K x N int4
    weights, a zero being a value equal to its block's zero point. `channels` are the output
    channels of the layer a tensor is the weight of, quantized forms alike."""
    model = onnx.load(str(path))
    uses = _uses(model)
    consumers = _consumers(model)
    stats = []
    for tensor in _all_tensors(model):
        roles = uses.get(tensor.name, set())
        if (
            tensor.name.endswith(_METADATA_SUFFIXES)
            or tensor.data_type in _NEVER_WEIGHTS
            or roles & _METADATA_ROLES
            or (tensor.data_type in _INDEX_TYPES and not roles & _DATA_ROLES)
        ):
            continue
        array = numpy_helper.to_array(tensor)
        if ("MatMulNBits", 1) in roles:
            stats.append(_int4_stats(tensor.name, array, _nbits_node(model, tensor.name)))
            continue
        shape = tuple(array.shape)
        stats.append(
            TensorStats(
                name=tensor.name,
                shape=shape,
                dtype=str(array.dtype),
                params=int(array.size),
                zeros=int(np.count_nonzero(array == 0)),
                channels=_output_channels(tensor.name, shape, consumers),
            )
        )
    return stats


#: (op, input index) of tensors that are quantization parameters, not weights.
_METADATA_ROLES = {
    ("QuantizeLinear", 1),
    ("QuantizeLinear", 2),
    ("DequantizeLinear", 1),
    ("DequantizeLinear", 2),
    ("MatMulNBits", 2),
    ("MatMulNBits", 3),
    ("MatMulInteger", 2),
    ("MatMulInteger", 3),
    ("ConvInteger", 2),
    ("ConvInteger", 3),
    ("DynamicQuantizeLinear", 1),
}
#: onnxruntime's quantizers name scales and zero points with these suffixes.
_METADATA_SUFFIXES = ("_scale", "_zero_point", "_scales", "_zero_points")
#: Integer tensors in these roles are quantized weights or biases.
_DATA_ROLES = {
    ("DequantizeLinear", 0),
    ("MatMulInteger", 1),
    ("ConvInteger", 1),
    ("MatMulNBits", 1),
}
#: (op, input index) of a layer's weight -> the axis of the weight that holds its output
#: channels: Conv W [C_out, C_in/groups, k...], MatMul B [K, N], Gemm B [K, N] ([N, K] with
#: transB), ConvTranspose W [C_in, C_out/groups, k...] (times groups).
_CHANNEL_AXES = {
    ("Conv", 1): 0,
    ("FusedConv", 1): 0,
    ("ConvInteger", 1): 0,
    ("QLinearConv", 3): 0,
    ("ConvTranspose", 1): 1,
    ("MatMul", 1): -1,
    ("MatMulInteger", 1): -1,
    ("QLinearMatMul", 3): -1,
    ("DynamicQuantizeMatMul", 1): -1,
    ("MatMulIntegerToFloat", 1): -1,
    ("Gemm", 1): 1,
    ("FusedGemm", 1): 1,
    ("QGemm", 3): 1,
}
#: Ops a weight may pass through on its way to its layer (input 0 -> output 0).
_PASS_THROUGH = {"DequantizeLinear", "Transpose", "Identity", "Cast"}


def _output_channels(
    name: str, shape: tuple[int, ...], consumers: dict[str, list[tuple[onnx.NodeProto, int]]]
) -> int | None:
    """Output channels of the first Conv/MatMul/Gemm (or quantized form) reading the weight
    `name`, followed through DequantizeLinear, Transpose, Identity and Cast."""
    frontier = [(name, shape)]
    while frontier:
        tensor, dims = frontier.pop(0)
        for node, index in consumers.get(tensor, []):
            attributes = _attributes(node)
            axis = _CHANNEL_AXES.get((node.op_type, index))
            if axis is not None and len(dims) >= 2:
                if node.op_type.endswith("Gemm") and attributes.get("transB", 0):
                    axis = 0
                groups = int(attributes.get("group", 1)) if node.op_type == "ConvTranspose" else 1
                return int(dims[axis]) * groups
            if node.op_type in _PASS_THROUGH and index == 0 and node.output:
                perm = attributes.get("perm") or range(len(dims) - 1, -1, -1)
                moved = tuple(dims[p] for p in perm) if node.op_type == "Transpose" else dims
                frontier.append((node.output[0], moved))
    return None


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _uses(model: onnx.ModelProto) -> dict[str, set[tuple[str, int]]]:
    """Tensor name -> {(consuming op type, input index)} over the main graph."""
    uses: dict[str, set[tuple[str, int]]] = {}
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, set()).add((node.op_type, index))
    return uses


def _consumers(model: onnx.ModelProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    """Tensor name -> [(consuming node, input index)] over the main graph, in graph order."""
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in model.graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, index))
    return consumers


def _nbits_node(model: onnx.ModelProto, weight: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == "MatMulNBits" and n.input[1] == weight)


def _int4_stats(name: str, packed: np.ndarray, node: onnx.NodeProto) -> TensorStats:
    """Unpack MatMulNBits' uint8 blobs (two 4-bit values a byte, low nibble first; one 8-bit
    value a byte with `bits` 8)."""
    attributes = _attributes(node)
    k, n, bits = int(attributes["K"]), int(attributes["N"]), int(attributes.get("bits", 4))
    if bits == 8:
        values = packed.reshape(n, -1)[:, :k]
    else:
        values = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(n, -1)[:, :k]
    zero_point = 1 << (bits - 1)  # symmetric blocks; asymmetric ones carry explicit zero points
    if len(node.input) > 3 and node.input[3]:
        zero_point = None
    zeros = int(np.count_nonzero(values == zero_point)) if zero_point is not None else 0
    dtype = f"int{bits}"
    return TensorStats(name=name, shape=(k, n), dtype=dtype, params=k * n, zeros=zeros, channels=n)


def opset(path: Path) -> int:
    """The default-domain opset the file actually declares (exporters may raise the request)."""
    model = onnx.load(str(path), load_external_data=False)
    return next(
        (entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0
    )


def _all_tensors(model: onnx.ModelProto):
    """Initializers and Constant-node tensors of the main graph and its subgraphs."""
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        yield from graph.initializer
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.TENSOR:
                    yield attribute.t
                elif attribute.type == onnx.AttributeProto.GRAPH:
                    graphs.append(attribute.g)
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    graphs.extend(attribute.graphs)


def readable(path: Path) -> onnx.ModelProto:
    """The model's graph (external data not loaded); ModelError when the file is not a whole
    ONNX protobuf (truncated, or another kind of file)."""
    try:
        return onnx.load(str(path), load_external_data=False)
    except DecodeError as exc:
        raise ModelError(
            f"{path.name} is not a readable ONNX file (truncated or not ONNX: {exc})"
        ) from None


def validate_external_data(path: Path) -> None:
    """Refuse external-data references that escape the model's directory or are links
    (absolute paths, `..`, symlinks, hardlinks: CVE-2024-27318, CVE-2026-27489)."""
    model = readable(path)
    root = path.parent.resolve()
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        target = root / location
        problem = None
        if not location or Path(location).is_absolute() or ".." in Path(location).parts:
            problem = "is absolute or leaves the model's directory"
        elif target.is_symlink():
            problem = "is a symbolic link"
        elif not target.is_file():
            problem = "does not exist"
        elif target.stat().st_nlink > 1:
            problem = "is a hard link"
        elif not target.resolve().is_relative_to(root):
            problem = "leaves the model's directory"
        if problem:
            raise UnsafeModelError(
                f"refused to load {path.name}: external data {location!r} of tensor "
                f"{tensor.name!r} {problem}"
            )
        end = int(entries.get("offset", 0) or 0) + int(entries.get("length", 0) or 0)
        if end > target.stat().st_size:
            raise ModelError(
                f"{path.name}: tensor {tensor.name!r} reads bytes up to {end:,} of {location}, "
                f"which has {target.stat().st_size:,} (truncated or not this model's data)"
            )


def graph_inputs(path: Path) -> list[str]:
    """Names of the inputs a caller feeds (initializers that double as inputs excluded)."""
    model = onnx.load(str(path), load_external_data=False)
    initializers = {tensor.name for tensor in model.graph.initializer}
    return [value.name for value in model.graph.input if value.name not in initializers]
