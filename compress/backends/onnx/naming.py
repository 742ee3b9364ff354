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
_WEIGHT_SUFFIXES = (".weight", ".bias", "/kernel", "/bias", "/depthwise_kernel", ":0")


def float_origin(tensor_name: str, float_names: Collection[str] = ()) -> str:
    """The float weight a tensor holds or was derived from: the longest of `float_names` that
    the name extends, else the name without the quantizer suffixes known today."""
    if tensor_name in float_names:
        return tensor_name
    origins = [
        name
        for name in float_names
        if tensor_name.startswith(name) and tensor_name[len(name)] in _DERIVED_SEPARATORS
    ]
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
