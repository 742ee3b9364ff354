"""Which layer an ONNX weight tensor belongs to, whatever the exporter or quantizer called it.

Quantizers derive new tensor names from the float ones and change the suffixes between releases
(`fc1.weight_quantized`, onnxruntime 1.32's `fc1.weight_Transposed_quantized`, `_Q4`...). So a
tensor is traced back to the float weight whose name it extends, and only then is the weight's
own suffix (`.weight`, `/kernel`) removed to give the layer.
"""

from __future__ import annotations

from collections.abc import Collection

#: Characters that may follow a float weight's name in a name derived from it.
_DERIVED_SEPARATORS = ("_", ".", "/", ":")
#: Suffixes known quantizers add; used only when no float name is known.
_QUANTIZER_SUFFIXES = ("_quantized", "_Transposed", "_Q4", "_DequantizeLinear")
_WEIGHT_SUFFIXES = (
    ".weight",
    ".bias",
    "/kernel",
    "/bias",
    "/depthwise_kernel",
    "/pointwise_kernel",
    "/gamma",
    "/beta",
    "/moving_mean",
    "/moving_variance",
    "/mean",
    "/variance",
    "/embeddings",
    ":0",
)


def float_origin(tensor_name: str, float_names: Collection[str] = ()) -> str:
    """The float weight a tensor holds or was derived from: the longest of `float_names` that
    the name contains with words added around it, else the name without the quantizer
    suffixes known today."""
    if tensor_name in float_names:
        return tensor_name
    origins = [name for name in float_names if _derives_from(tensor_name, name)]
    if origins:
        return max(origins, key=len)
    stripped = None
    while stripped != tensor_name:
        stripped = tensor_name
        for suffix in _QUANTIZER_SUFFIXES:
            tensor_name = tensor_name.removesuffix(suffix)
    return tensor_name


def layer_name(tensor_name: str, float_names: Collection[str] = ()) -> str:
    """The layer of a weight tensor: "conv1.weight", "conv1.weight_Transposed_quantized" and
    "conv1/kernel" all give "conv1"."""
    origin = float_origin(tensor_name, float_names)
    for suffix in _WEIGHT_SUFFIXES:
        if origin.endswith(suffix):
            return origin[: -len(suffix)]
    return origin


def _derives_from(tensor_name: str, float_name: str) -> bool:
    """Whether `tensor_name` is `float_name` with words added around it: suffixes
    ("fc1.weight_quantized") or graph-optimizer prefixes ("ConvMulFusion_W_conv1/kernel")."""
    start = tensor_name.find(float_name)
    while start != -1:
        end = start + len(float_name)
        before_ok = start == 0 or tensor_name[start - 1] == "_"
        after_ok = end == len(tensor_name) or tensor_name[end] in _DERIVED_SEPARATORS
        if before_ok and after_ok:
            return True
        start = tensor_name.find(float_name, start + 1)
    return False
