"""MACs of one sample of each ONNX model, counted on the graph (compress/onnx/macs.py)
with the first sample of the inputs latency is measured on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.onnx.inspect import graph_inputs
from compress.onnx.macs import count_macs


def measure_macs(paths: dict[str, Path], inputs: list[np.ndarray]) -> dict[str, int]:
    """{label: MACs of one sample}: the first sample of `inputs` (in the models' input order)
    fed to each model."""
    sample = [np.ascontiguousarray(array[:1]) for array in inputs]
    return {
        label: count_macs(path, dict(zip(graph_inputs(path), sample, strict=True)))
        for label, path in paths.items()
    }
