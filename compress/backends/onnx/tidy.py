"""Clean-ups applied to freshly exported ONNX files."""

from __future__ import annotations

from pathlib import Path

import onnx


def strip_debug_metadata(path: Path) -> None:
    """Drop per-node exporter metadata (stack traces with local paths, FX node dumps).

    It leaks the exporting machine's file paths and makes artifacts differ between machines;
    graph-level metadata and everything that affects execution are kept.
    """
    model = onnx.load(str(path))
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
