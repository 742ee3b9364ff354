"""Speed-aware placement for static INT8: keep in float the kinds of nodes whose integer
kernels (with their quantize/dequantize steps) cost more than they save on this CPU.

Nodes are grouped by the work they do (regular and depthwise convolutions, matrix products,
element-wise adds and multiplies, activations...): a greedy search keeps one group at a time in
float while that makes the model measurably faster, timing each candidate interleaved with the
current best. Ops that only move quantized values (reshapes, pooling maxima, ReLU) follow their
neighbours and are not searched.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from compress.backends.onnx.quantize import Quantizer
from compress.backends.onnx.timing import Timing

#: Ops that carry quantized values without rounding them again.
PASS_THROUGH = {
    "Relu", "Clip", "MaxPool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose", "Gather",
    "Concat", "Split", "Slice", "Pad", "Squeeze", "Unsqueeze", "Resize", "Expand", "Tile",
    "Identity", "Where", "ArgMax",
}  # fmt: skip
#: A candidate must be this much faster than the current placement, measured twice.
MIN_GAIN = 0.04
MAX_TRIALS = 16


@dataclass
class Placement:
    """What the search chose: nodes kept float per group, and the figures behind it."""

    path: Path  # the fastest file found
    keep_float: set[str] = field(default_factory=set)
    kept: list[dict] = field(default_factory=list)
    trials: int = 0

    def record(self) -> dict:
        return {"kept_float_for_speed": self.kept, "placement_trials": self.trials}


def node_groups(model: onnx.ModelProto, names: list[str]) -> dict[str, list[str]]:
    """The searched nodes of `names` by group: op type, with depthwise convolutions apart."""
    wanted = set(names)
    initializers = {t.name: t for t in model.graph.initializer}
    groups: dict[str, list[str]] = defaultdict(list)
    for node in model.graph.node:
        if node.name not in wanted or node.op_type in PASS_THROUGH:
            continue
        groups[_group(node, initializers)].append(node.name)
    return dict(groups)


def _group(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> str:
    if node.op_type != "Conv":
        return node.op_type
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    weight = initializers.get(node.input[1])
    if group > 1 and weight is not None and weight.dims[1] == 1:
        return "Conv (depthwise)"
    return "Conv"


def search(quantizer: Quantizer, full: Path, timing: Timing) -> Placement:
    """Greedy search from the fully quantized `full`: returns the fastest placement found (at
    most MAX_TRIALS quantized variants are timed)."""
    prepared = onnx.load(str(quantizer.prepared), load_external_data=False)
    groups = node_groups(prepared, quantizer.quantized_nodes(full))
    placement = Placement(path=full)
    remaining = dict(groups)
    while remaining and placement.trials < MAX_TRIALS:
        best: tuple[float, str, Path] | None = None
        for name, nodes in remaining.items():
            if placement.trials >= MAX_TRIALS:
                break
            placement.trials += 1
            candidate = quantizer.scratch / f"placement-{placement.trials}.onnx"
            quantizer.write(candidate, placement.keep_float | set(nodes))
            ratio = timing.ratio(candidate, placement.path)
            if best is None or ratio < best[0]:
                best = (ratio, name, candidate)
        if best is None or best[0] > 1 - MIN_GAIN:
            break
        confirmed = timing.ratio(best[2], placement.path)  # a second look: timing noise
        if confirmed > 1 - MIN_GAIN:
            break
        name = best[1]
        placement.keep_float |= set(remaining.pop(name))
        placement.path = best[2]
        placement.kept.append(
            {
                "group": name,
                "nodes": len(groups[name]),
                "speedup": round(1 / max(best[0], confirmed), 3),
            }
        )
    return placement
