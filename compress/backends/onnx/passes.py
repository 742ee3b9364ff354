"""Passes that work on exported ONNX files, whatever framework the model came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress.backends.base import PassContext
from compress.backends.onnx.quantize import quantize
from compress.errors import ModelError


def apply_onnx_pass(config: Any, source: Path, target: Path, context: PassContext) -> dict:
    """Run one ONNX-stage pass from `source` to `target`; returns what it did."""
    if config.type == "quantize":
        return _quantize(config, source, target, context)
    raise ModelError(f"pass {config.type!r} cannot run on an ONNX file")


def _quantize(config: Any, source: Path, target: Path, context: PassContext) -> dict:
    samples, batch = None, 1
    if config.mode == "static":
        split = context.data.get("calibration") or context.data.get("train")
        if split is None:
            raise ModelError(
                "quantize: static mode calibrates on the 'calibration' (or 'train') "
                "split, and data.source returned neither"
            )
        if "calibration" not in context.data:
            context.reporter.note("quantize: no 'calibration' split; calibrated on 'train'")
        samples = split.take(config.calibration.samples).inputs
        first = context.recipe.model.inputs[0].shape[0]
        batch = first if isinstance(first, int) and first > 0 else 16
    info = quantize(source, target, config, samples, batch)
    return {"mode": config.mode, "weights": config.weights, **info}
