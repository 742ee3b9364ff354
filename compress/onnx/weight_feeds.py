"""One onnxruntime session whose chosen weights can be replaced at run time.

Each chosen initializer is also declared a graph input, which makes it an overridable default:
a sensitivity scan feeds a pruned or fake-quantized copy of a weight for one run, without
re-exporting the model or creating a session per trial.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from compress.onnx import runtime
from compress.onnx.naming import layer_name


def layer_weights(path: Path, layers: Collection[str]) -> dict[str, list[str]]:
    """The weight matrices and kernels (2+ dims) of the file that belong to each of `layers`
    (by the layer naming of the report), in file order; layers with none are left out."""
    model = onnx.load(str(path), load_external_data=False)
    found: dict[str, list[str]] = {}
    for tensor in model.graph.initializer:
        layer = layer_name(tensor.name)
        if len(tensor.dims) >= 2 and layer in layers:
            found.setdefault(layer, []).append(tensor.name)
    return found


class WeightFeeds:
    """A session over `path` with the weights `names` fed per run (their stored values unless
    changed)."""

    def __init__(self, path: Path, names: Collection[str], scratch: Path) -> None:
        model = onnx.load(str(path))
        stored = {tensor.name: tensor for tensor in model.graph.initializer}
        declared = {value.name for value in model.graph.input}
        self.weights = {name: numpy_helper.to_array(stored[name]) for name in names}
        for name in names:
            if name not in declared:
                tensor = stored[name]
                model.graph.input.append(
                    helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims))
                )
        overridable = scratch / f"{path.stem}.feeds.onnx"
        onnx.save(model, str(overridable))
        self.session = runtime.make_session(overridable, threads=os.cpu_count() or 1)
        self.inputs = [
            value.name for value in self.session.get_inputs() if value.name not in self.weights
        ]

    def predict(
        self, inputs: list[np.ndarray], batch: int, changed: Mapping[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """The first output over `inputs`, in batches, with the `changed` weights fed (the
        others keep their stored values)."""
        weights = dict(changed or {})
        parts = []
        for start in range(0, len(inputs[0]), batch):
            feeds = {
                name: x[start : start + batch] for name, x in zip(self.inputs, inputs, strict=True)
            }
            parts.append(self.session.run(None, {**feeds, **weights})[0])
        return np.concatenate(parts)
