"""PyTorch -> ONNX: one self-contained file, dynamo exporter first, TorchScript as fallback."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.backends.base import ExportInfo
from compress.backends.native_logs import quiet_library
from compress.backends.onnx.tidy import tidy_dynamo_export
from compress.errors import ModelError, message_line
from compress.generated_inputs import generated_array
from compress.recipe import InputSpec, Recipe

#: Size given to dynamic dimensions in the example inputs (not 0 or 1, which exporters specialize).
EXAMPLE_DIM = 2


def example_inputs(specs: list[InputSpec]) -> tuple[torch.Tensor, ...]:
    """Deterministic example tensors matching the declared inputs (valid integer values: see
    compress.generated_inputs)."""
    rng = np.random.default_rng(0)
    tensors = []
    for spec in specs:
        shape = [dim if isinstance(dim, int) and dim > 0 else EXAMPLE_DIM for dim in spec.shape]
        tensors.append(torch.from_numpy(generated_array(spec, shape, rng)))
    return tuple(tensors)


def dim_name(spec: InputSpec, axis: int) -> str:
    """Name of a dynamic dimension: its own name, "batch" for axis 0, else input_dimN."""
    dim = spec.shape[axis]
    if isinstance(dim, str):
        return dim
    return "batch" if axis == 0 else f"{spec.name}_dim{axis}"


def _dynamic_axes(spec: InputSpec) -> dict[int, str]:
    return {
        axis: dim_name(spec, axis)
        for axis, dim in enumerate(spec.shape)
        if isinstance(dim, str) or dim == -1
    }


def dynamic_shapes_for(specs: list[InputSpec]) -> tuple:
    """torch.export dynamic shapes for the declared inputs (-1 or named dims)."""
    dims = {n: torch.export.Dim(n) for spec in specs for n in _dynamic_axes(spec).values()}
    return tuple(
        {axis: dims[n] for axis, n in _dynamic_axes(spec).items()} or None for spec in specs
    )


def dynamo_export(model: nn.Module, recipe: Recipe, path: Path) -> None:
    """The dynamo exporter into one self-contained file, then nodes named after modules and
    exporter metadata dropped (tidy_dynamo_export). Raises what the exporter raises."""
    specs = recipe.model.inputs
    with quiet_exporter():
        torch.onnx.export(
            model,
            example_inputs(specs),
            str(path),
            dynamo=True,
            external_data=False,
            opset_version=recipe.export.opset,
            input_names=[spec.name for spec in specs],
            dynamic_shapes=dynamic_shapes_for(specs),
        )
    tidy_dynamo_export(path)


def export_module(model: nn.Module, recipe: Recipe, path: Path) -> ExportInfo:
    """Export in eval mode; external data is never written for models under 2 GB."""
    specs = recipe.model.inputs
    args = example_inputs(specs)
    names = [spec.name for spec in specs]
    opset = recipe.export.opset
    model.eval()
    notes: list[str] = []
    try:
        dynamo_export(model, recipe, path)
        return ExportInfo(exporter="dynamo", notes=notes)
    except Exception as exc:
        reason = message_line(exc)[:200]
        notes.append(f"the dynamo ONNX exporter failed ({reason}); used the TorchScript exporter")
    for stale in (path, path.with_name(path.name + ".data")):
        stale.unlink(missing_ok=True)
    try:
        with quiet_exporter():
            torch.onnx.export(
                model,
                args,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=names,
                dynamic_axes={spec.name: _dynamic_axes(spec) for spec in specs},
            )
    except Exception as exc:
        raise ModelError(f"ONNX export failed with both exporters: {exc}") from exc
    return ExportInfo(exporter="torchscript", notes=notes)


def quiet_exporter() -> contextlib.AbstractContextManager[None]:
    """The exporters print progress, warnings and log lines; the toolkit reports what matters
    (exporter used, opset in the file, parity) itself."""
    return quiet_library(
        "torch.onnx", "torch.export", "torch._dynamo", "torch.utils._pytree", "torchao"
    )
