"""The layers of a Keras model (Keras 3 or tf-keras) as the neutral passes see them."""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.passes.targets import LayerInfo

PRUNABLE = {"Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose"}


def flat_layers(model: Any) -> list[Any]:
    """Every leaf layer in order, looking inside nested models."""
    leaves = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            leaves.extend(flat_layers(layer))
        else:
            leaves.append(layer)
    return leaves


def is_prunable(layer: Any) -> bool:
    return type(layer).__name__ in PRUNABLE and getattr(layer, "kernel", None) is not None


def keras_layers(model: Any) -> list[LayerInfo]:
    return [
        LayerInfo(
            name=layer.name,
            kind=type(layer).__name__,
            params=int(layer.count_params()),
            weights=int(np.prod(layer.kernel.shape)) if is_prunable(layer) else 0,
            prunable=is_prunable(layer),
        )
        for layer in flat_layers(model)
        if layer.weights
    ]


def kernels(model: Any, names: list[str] | None = None) -> dict[str, Any]:
    """{layer name: kernel variable} for the named (default: all prunable) layers."""
    chosen = {layer.name: layer for layer in flat_layers(model) if is_prunable(layer)}
    return {name: chosen[name].kernel for name in (names if names is not None else chosen)}


def named_weights(model: Any) -> dict[str, np.ndarray]:
    """Every weight as numpy, named "layer/weight" (used to name ONNX initializers)."""
    named = {}
    for layer in flat_layers(model):
        for variable in layer.weights:
            short = variable.name.split("/")[-1].split(":")[0]
            named[f"{layer.name}/{short}"] = np.asarray(variable.numpy())
    return named
