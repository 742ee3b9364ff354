"""ONNX files as model input: post-training quantization and measurement work on them directly.

The "model" is the path of the validated input file; it is never modified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from compress.backends.base import Backend, ExportInfo
from compress.errors import ModelError
from compress.onnx import inspect, runtime
from compress.passes.targets import LayerInfo
from compress.recipe import Recipe

_WEIGHT_OPS = {"Conv": 1, "MatMul": 1, "Gemm": 1, "ConvTranspose": 1}


class OnnxBackend(Backend):
    name = "onnx"
    pass_hint = (
        "an ONNX input takes post-training quantization only (mode dynamic, static or "
        "weight_only): the other passes need a framework model (PyTorch or Keras)"
    )

    def load(self, recipe: Recipe, built: Any = None) -> Path:
        path = recipe.resolve(recipe.model.source)
        inspect.validate_external_data(path)
        inspect.check(path)
        declared = [spec.name for spec in recipe.model.inputs]
        actual = inspect.graph_inputs(path)
        if declared != actual:
            raise ModelError(
                f"model.inputs names {declared} do not match the inputs of {path.name}: {actual}"
            )
        return path

    def copy(self, model: Path) -> Path:
        return model

    def layers(self, model: Path) -> list[LayerInfo]:
        """Nodes that hold a weight initializer (Conv, MatMul, Gemm), by node name."""
        graph = onnx.load(str(model)).graph
        sizes = {t.name: int(np.prod(t.dims)) for t in graph.initializer}
        return [
            LayerInfo(
                name=node.name,
                kind=node.op_type,
                params=sizes[node.input[index]],
                weights=sizes[node.input[index]],
                prunable=False,
            )
            for node in graph.node
            for index in [_WEIGHT_OPS.get(node.op_type)]
            if index is not None and len(node.input) > index and node.input[index] in sizes
        ]

    def predict(self, model: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return runtime.run(runtime.make_session(model), inputs)

    def export_onnx(
        self, model: Path, recipe: Recipe, path: Path, exporter: str | None = None
    ) -> ExportInfo:
        """A self-contained copy: external data is loaded and written inline (< 2 GB)."""
        loaded = onnx.load(str(model), load_external_data=True)
        try:
            onnx.save(loaded, str(path))
        except ValueError as exc:
            raise ModelError(f"cannot write {model.name} as one file: {exc}") from exc
        return ExportInfo(exporter="copy")

    def versions(self) -> dict[str, str]:
        return {"onnx": onnx.__version__}
