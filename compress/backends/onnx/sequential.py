"""Run an ONNX graph piece by piece on calibration inputs, so that each weight's statistics
come from the inputs that the already-quantized weights before it produce (sequential
calibration, as llm-compressor does it on torch modules, here on the graph that is shipped).

Asking for a tensor runs only the nodes not run yet that it depends on, as a small model of
their own in onnxruntime; the tensors a later piece still reads are kept (per batch of samples),
the rest dropped. The whole graph is thus run about once, whatever the number of pieces, and a
weight changed between pieces is what the following pieces compute with.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper


class SequentialRunner:
    """The graph of `model`, run on `batches` (one feed dict per batch) up to the tensors asked
    for; `set_weight` changes an initializer for the pieces that run afterwards."""

    def __init__(self, model: onnx.ModelProto, batches: list[dict[str, np.ndarray]]) -> None:
        self.model = model
        self.nodes = list(model.graph.node)
        self.weights = {t.name: t for t in model.graph.initializer}
        self.producer = {out: i for i, node in enumerate(self.nodes) for out in node.output if out}
        self.reads = [_reads(node) for node in self.nodes]
        self.values: dict[str, list[np.ndarray]] = {
            name: [batch[name] for batch in batches] for name in batches[0]
        }
        self.done: set[int] = set()

    def set_weight(self, name: str, array: np.ndarray) -> None:
        self.weights[name] = numpy_helper.from_array(np.ascontiguousarray(array), name)

    def tensor(self, name: str) -> list[np.ndarray]:
        """The values of tensor `name`, one array per batch."""
        if name not in self.values:
            self._run(self._needed(name), name)
        return self.values[name]

    def _needed(self, name: str) -> list[int]:
        """The nodes not run yet that `name` depends on, in graph order."""
        found: set[int] = set()
        pending = [name]
        while pending:
            tensor = pending.pop()
            index = self.producer.get(tensor)
            if tensor in self.values or index is None or index in self.done or index in found:
                continue
            found.add(index)
            pending.extend(self.reads[index])
        return sorted(found)

    def _run(self, indices: list[int], wanted: str) -> None:
        inside = set(indices)
        produced = {out for i in indices for out in self.nodes[i].output if out}
        read = {name for i in indices for name in self.reads[i]} - produced
        inputs = sorted(name for name in read if name in self.values)
        initializers = [self.weights[name] for name in sorted(read) if name in self.weights]
        later = {
            name
            for i, names in enumerate(self.reads)
            if i not in self.done and i not in inside
            for name in names
        }
        outputs = sorted((produced & later) | {wanted})
        examples = {name: self.values[name][0] for name in inputs}
        piece = _piece(
            self.model, [self.nodes[i] for i in indices], examples, initializers, outputs
        )
        session = _session(piece)
        count = len(next(iter(self.values.values())))
        results: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
        for batch in range(count):
            feed = {name: self.values[name][batch] for name in inputs}
            for name, value in zip(outputs, session.run(outputs, feed), strict=True):
                results[name].append(value)
        self.done |= inside
        self.values.update(results)
        still_read = later | {wanted}
        for name in [n for n in self.values if n not in still_read]:
            del self.values[name]


def input_hessian(batches: list[np.ndarray]) -> np.ndarray:
    """`X^T X / rows` of a MatMul input given per batch (every leading axis is a row)."""
    width = batches[0].shape[-1]
    total = np.zeros((width, width), np.float64)
    rows = 0
    for batch in batches:
        flat = batch.reshape(-1, width).astype(np.float32)
        total += flat.T @ flat
        rows += len(flat)
    return total / max(rows, 1)


def batches_of(
    names: list[str], arrays: list[np.ndarray], size: int
) -> Iterator[dict[str, np.ndarray]]:
    """Feed dicts of `size` samples."""
    for start in range(0, len(arrays[0]), size):
        yield {
            name: np.ascontiguousarray(array[start : start + size])
            for name, array in zip(names, arrays, strict=True)
        }


def _reads(node: onnx.NodeProto) -> list[str]:
    """The tensors a node reads, those its subgraphs read from outside them included."""
    names = [name for name in node.input if name]
    for attribute in node.attribute:
        graphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs
        for graph in graphs:
            inner = {out for n in graph.node for out in n.output}
            inner |= {i.name for i in graph.input} | {t.name for t in graph.initializer}
            names += [name for n in graph.node for name in _reads(n) if name not in inner]
    return names


def _piece(
    model: onnx.ModelProto,
    nodes: list[onnx.NodeProto],
    examples: dict[str, np.ndarray],
    initializers: list[onnx.TensorProto],
    outputs: list[str],
) -> onnx.ModelProto:
    """A model of `nodes` alone, fed the tensors of `examples` (typed as those arrays, every
    dimension free) and returning `outputs` (typed by onnxruntime)."""
    inputs = [
        helper.make_tensor_value_info(
            name,
            helper.np_dtype_to_tensor_dtype(array.dtype),
            [f"{name}_{axis}" for axis in range(array.ndim)],
        )
        for name, array in examples.items()
    ]
    graph = helper.make_graph(
        nodes, "piece", inputs, [onnx.ValueInfoProto(name=name) for name in outputs], initializers
    )
    piece = helper.make_model(graph, opset_imports=list(model.opset_import))
    piece.ir_version = model.ir_version
    return piece


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    """A session on every core: calibration is not timed."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
