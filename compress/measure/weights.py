"""Parameter counts and sparsity read from the ONNX file itself (not from the framework)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from compress.onnx.inspect import weight_tensors
from compress.onnx.naming import layer_name


@dataclass(frozen=True)
class WeightSummary:
    params: int
    nonzero_params: int
    layers: list[dict]

    @property
    def sparsity(self) -> float:
        return 0.0 if self.params == 0 else 1.0 - self.nonzero_params / self.params


def float_weight_names(path: Path) -> set[str]:
    """Names of a file's float weight tensors: the names quantized tensors derive from."""
    return {tensor.name for tensor in weight_tensors(path) if tensor.dtype.startswith("float")}


def summarize(path: Path, float_names: Collection[str] = ()) -> WeightSummary:
    """Totals over all weights; one layer row per weight matrix or kernel (2+ dims), named
    after the layer of the float weight (`float_names`) each tensor holds or derives from, with
    the layer's output channels where the tensor is a Conv/MatMul/Gemm weight."""
    tensors = weight_tensors(path)
    params = sum(t.params for t in tensors)
    nonzero = sum(t.params - t.zeros for t in tensors)
    layers = [
        {
            "name": layer_name(t.name, float_names),
            "params": t.params,
            "sparsity": round(t.zeros / t.params, 6) if t.params else 0.0,
            "dtype": t.dtype,
            "channels": t.channels,
        }
        for t in tensors
        if len(t.shape) >= 2
    ]
    return WeightSummary(params=params, nonzero_params=nonzero, layers=layers)
