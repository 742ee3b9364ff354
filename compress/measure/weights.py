"""Parameter counts and sparsity read from the ONNX file itself (not from the framework)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compress.backends.onnx.inspect import weight_tensors

_QUANTIZED = ("_quantized", "_Q4", "_DequantizeLinear")
_SUFFIXES = (".weight", ".bias", "/kernel", "/bias", ":0")


@dataclass(frozen=True)
class WeightSummary:
    params: int
    nonzero_params: int
    layers: list[dict]

    @property
    def sparsity(self) -> float:
        return 0.0 if self.params == 0 else 1.0 - self.nonzero_params / self.params


def layer_name(tensor_name: str) -> str:
    """The layer of a weight tensor ("conv1.weight", "conv1.weight_quantized" -> "conv1")."""
    for suffix in _QUANTIZED:
        tensor_name = tensor_name.removesuffix(suffix)
    for suffix in _SUFFIXES:
        if tensor_name.endswith(suffix):
            return tensor_name[: -len(suffix)]
    return tensor_name


def summarize(path: Path) -> WeightSummary:
    """Totals over all weights; one layer row per weight matrix or kernel (2+ dims)."""
    tensors = weight_tensors(path)
    params = sum(t.params for t in tensors)
    nonzero = sum(t.params - t.zeros for t in tensors)
    layers = [
        {
            "name": layer_name(t.name),
            "params": t.params,
            "sparsity": round(t.zeros / t.params, 6) if t.params else 0.0,
            "dtype": t.dtype,
        }
        for t in tensors
        if len(t.shape) >= 2
    ]
    return WeightSummary(params=params, nonzero_params=nonzero, layers=layers)
