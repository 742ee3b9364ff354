"""`compress plan` for the post-training quantization passes: which nodes of the exported graph
each will quantize, to which integer types, without calibrating or writing a file (each
algorithm's quantizer class says its ops and types)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import onnx

from compress.backends.onnx.quantize import QUANTIZERS, excluded_nodes
from compress.errors import ModelError
from compress.onnx.naming import layer_name
from compress.passes.quantize import PostTrainingQuantize


def plan_quantize_file(path: Path, config: PostTrainingQuantize, context: Any) -> dict:
    """The nodes with a constant weight that `config` quantizes in the file at `path` (those
    its `ignore` leaves out excepted), the types they will hold, and what is decided only when
    the pass runs."""
    model = onnx.load(str(path))
    excluded, unmatched = excluded_nodes(model, config.ignore)
    if unmatched:
        raise ModelError(f"quantize: ignore {unmatched[0]!r} matches no node of the ONNX graph")
    quantizer = QUANTIZERS[type(config)]
    left = set(quantizer.excluded_before(model, excluded))
    weights = {t.name: t for t in model.graph.initializer if len(t.dims) >= 2}
    nodes = []
    for node in model.graph.node:
        weight = next((name for name in node.input if name in weights), None)
        if node.op_type in quantizer.weight_ops and weight and node.name not in left:
            nodes.append(
                {
                    "name": layer_name(weight),
                    "node": node.name,
                    "op": node.op_type,
                    "weights": math.prod(weights[weight].dims),
                }
            )
    return {
        "nodes": nodes,
        "types": quantizer.planned_types(config),
        "decided_at_run": quantizer.decided_at_run(config),
    }
