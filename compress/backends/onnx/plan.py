"""`compress plan` for the post-training quantization passes: which nodes of the exported graph
each will quantize, to which integer types, without calibrating or writing a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from compress.backends.onnx.quantize import (
    QUANTIZERS,
    VNNI_FEATURES,
    cpu_flags,
    default_activations,
    excluded_nodes,
)
from compress.errors import ModelError
from compress.onnx.naming import layer_name
from compress.passes.quantize import (
    DynamicQuantize,
    PostTrainingQuantize,
    StaticQuantize,
    WeightOnlyQuantize,
)

#: The weight-holding ops each algorithm quantizes (the ones the report's MACs and size follow).
WEIGHT_OPS: dict[type[PostTrainingQuantize], tuple[str, ...]] = {
    DynamicQuantize: ("MatMul", "Gemm"),
    StaticQuantize: ("Conv", "MatMul", "Gemm"),
    WeightOnlyQuantize: ("MatMul", "Gemm"),
}


def plan_quantize_file(path: Path, config: PostTrainingQuantize, context: Any) -> dict:
    """The nodes with a constant weight that `config` quantizes in the file at `path` (those
    its `ignore` leaves out excepted), the types they will hold, and what is decided only when
    the pass runs."""
    model = onnx.load(str(path))
    excluded, unmatched = excluded_nodes(model, config.ignore)
    if unmatched:
        raise ModelError(f"quantize: ignore {unmatched[0]!r} matches no node of the ONNX graph")
    left = set(QUANTIZERS[type(config)].excluded_before(model, excluded))
    weights = {t.name: t for t in model.graph.initializer if len(t.dims) >= 2}
    nodes = []
    for node in model.graph.node:
        weight = next((name for name in node.input if name in weights), None)
        if node.op_type in WEIGHT_OPS[type(config)] and weight and node.name not in left:
            count = 1
            for dim in weights[weight].dims:
                count *= dim
            nodes.append(
                {
                    "name": layer_name(weight),
                    "node": node.name,
                    "op": node.op_type,
                    "weights": count,
                }
            )
    return {"nodes": nodes, "types": _types(config), "decided_at_run": _run_time(config)}


def _types(config: PostTrainingQuantize) -> str:
    if isinstance(config, WeightOnlyQuantize):
        kind = "symmetric" if config.symmetric else "asymmetric"
        return (
            f"int4 weights in {kind} blocks of {config.block_size} (MatMulNBits), float activations"
        )
    narrow = "" if VNNI_FEATURES & cpu_flags() else " (7-bit: the CPU has no VNNI)"
    if isinstance(config, DynamicQuantize):
        return f"int8 weights{narrow}, uint8 activations quantized at run time"
    if config.activations != "auto":
        return f"int8 weights, {config.activations} activations (QDQ)"
    chosen = default_activations()
    return f"int8 weights, {chosen.type} activations: {chosen.why}"


def _run_time(config: PostTrainingQuantize) -> list[str]:
    """What the pass decides by measuring, so the plan cannot say it in advance."""
    found = []
    if isinstance(config, StaticQuantize):
        if config.placement == "speed":
            found.append(
                "placement speed: kinds of node whose INT8 is not faster on this CPU stay float"
            )
        if not VNNI_FEATURES & cpu_flags():
            found.append("the weight width (8 or 7 bits) is measured against float")
    if config.max_accuracy_drop is not None:
        found.append(
            f"max_accuracy_drop {config.max_accuracy_drop:g}: the most sensitive nodes return "
            "to float until the drop holds"
        )
    return found
