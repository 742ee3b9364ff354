"""Read what an ONNX file holds: weights, their sparsity and dtype, and side files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from compress.errors import ModelError

#: Integer tensors of these types are shapes and indices, not weights.
_INDEX_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}


@dataclass(frozen=True)
class TensorStats:
    name: str
    shape: tuple[int, ...]
    dtype: str
    params: int
    zeros: int


def check(path: Path) -> None:
    """Run onnx.checker on the file (external data included); ModelError on failure."""
    try:
        onnx.checker.check_model(str(path), full_check=False)
    except (onnx.checker.ValidationError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
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
    """Every weight tensor (initializers and Constant nodes, index tensors excluded)."""
    model = onnx.load(str(path))
    stats = []
    for tensor in _all_tensors(model):
        if tensor.data_type in _INDEX_TYPES:
            continue
        array = numpy_helper.to_array(tensor)
        stats.append(
            TensorStats(
                name=tensor.name,
                shape=tuple(array.shape),
                dtype=str(array.dtype),
                params=int(array.size),
                zeros=int(np.count_nonzero(array == 0)),
            )
        )
    return stats


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
