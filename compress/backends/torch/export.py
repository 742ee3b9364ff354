"""PyTorch -> ONNX: one self-contained file from the dynamo exporter (TorchScript when dynamo
fails), or from whichever of the two gives the faster graph (export.exporter auto)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

import compress.interrupts as interrupts
from compress.backends.base import ExportInfo
from compress.backends.native_logs import discarded_native_output, quiet_library
from compress.backends.onnx.timing import Timing
from compress.errors import ModelError, message_line
from compress.generated_inputs import generated_array
from compress.measure.latency import latency_inputs
from compress.onnx.tidy import tidy_dynamo_export, tidy_torchscript_export
from compress.recipe import InputSpec, Recipe

#: The TorchScript graph is kept only when this much faster than the dynamo one.
EXPORTER_MARGIN = 0.03
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


def torchscript_export(model: nn.Module, recipe: Recipe, path: Path) -> None:
    """The TorchScript exporter, then nodes and weights named after modules."""
    specs = recipe.model.inputs
    with quiet_exporter(), discarded_native_output():
        torch.onnx.export(
            model,
            example_inputs(specs),
            str(path),
            dynamo=False,
            opset_version=recipe.export.opset,
            input_names=[spec.name for spec in specs],
            dynamic_axes={spec.name: _dynamic_axes(spec) for spec in specs},
        )
    tidy_torchscript_export(path)


def export_module(
    model: nn.Module, recipe: Recipe, path: Path, exporter: str | None = None
) -> ExportInfo:
    """Export in eval mode with `exporter` (the baseline's choice, for the compressed model),
    else recipe.export.exporter; external data is never written for models under 2 GB."""
    model.eval()
    chosen = exporter if exporter in ("dynamo", "torchscript") else recipe.export.exporter
    if chosen == "torchscript":
        _export_or_fail(torchscript_export, model, recipe, path, "the TorchScript exporter")
        return ExportInfo(exporter="torchscript")
    info = _dynamo_else_torchscript(model, recipe, path)
    if chosen == "auto" and info.exporter == "dynamo" and recipe.measure.latency is not None:
        return _faster_of_both(model, recipe, path, info)
    return info


def _dynamo_else_torchscript(model: nn.Module, recipe: Recipe, path: Path) -> ExportInfo:
    try:
        dynamo_export(model, recipe, path)
        return ExportInfo(exporter="dynamo")
    except Exception as exc:
        interrupts.check()  # an interrupt the exporter turned into a failure: no fallback
        reason = message_line(exc)[:200]
    note = f"the dynamo ONNX exporter failed ({reason}); used the TorchScript exporter"
    for stale in (path, path.with_name(path.name + ".data")):
        stale.unlink(missing_ok=True)
    _export_or_fail(torchscript_export, model, recipe, path, "both exporters")
    return ExportInfo(exporter="torchscript", notes=[note])


def _export_or_fail(
    export: Callable[[nn.Module, Recipe, Path], None],
    model: nn.Module,
    recipe: Recipe,
    path: Path,
    what: str,
) -> None:
    try:
        export(model, recipe, path)
    except Exception as exc:
        raise ModelError(f"ONNX export failed with {what}: {message_line(exc)[:300]}") from exc


def _faster_of_both(model: nn.Module, recipe: Recipe, path: Path, dynamo: ExportInfo) -> ExportInfo:
    """export.exporter auto: also export with TorchScript and keep the graph that runs faster
    here (the exporters' graphs differ: MiniLM's is 10% faster from TorchScript, and more so
    once quantized)."""
    other = path.with_name(path.stem + ".torchscript.onnx")
    try:
        torchscript_export(model, recipe, other)
    except Exception:  # dynamo's graph is there; TorchScript cannot export every model
        interrupts.check()
        other.unlink(missing_ok=True)
        return dynamo
    spec = recipe.measure.latency
    inputs = latency_inputs(recipe.model.inputs, spec, None)
    ratio = Timing(inputs, spec.threads).ratio(other, path)
    if ratio > 1 - EXPORTER_MARGIN:
        other.unlink()
        return dynamo
    other.replace(path)
    note = (
        f"export.exporter auto: the TorchScript exporter's graph ran {1 / ratio:.2f}x as fast "
        "as the dynamo exporter's on this CPU; both models use it"
    )
    return ExportInfo(exporter="torchscript", notes=[note])


def quiet_exporter() -> contextlib.AbstractContextManager[None]:
    """The exporters print progress, warnings and log lines; the toolkit reports what matters
    (exporter used, opset in the file, parity) itself."""
    return quiet_library(
        "torch.onnx", "torch.export", "torch._dynamo", "torch.utils._pytree", "torchao"
    )
