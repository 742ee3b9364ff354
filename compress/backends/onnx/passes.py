"""Handlers of passes that rewrite exported ONNX files, whatever framework the model came from."""

from __future__ import annotations

from pathlib import Path

from compress.backends.base import PassContext
from compress.backends.onnx.quantize import quantize
from compress.errors import ModelError
from compress.passes.quantize import QuantizePass


def quantize_file(source: Path, target: Path, config: QuantizePass, context: PassContext) -> dict:
    """Post-training quantization from `source` to `target`; static mode calibrates on the
    first of the pass's splits that data.source returned."""
    samples, batch = None, 1
    if config.splits:
        found = context.split(config)
        if found is None:
            raise ModelError(
                f"quantize: {config.mode} mode calibrates on the 'calibration' (or 'train') "
                "split, and data.source returned neither"
            )
        name, split = found
        if name != config.splits[0]:
            context.reporter.note(
                f"quantize: no '{config.splits[0]}' split; calibrated on '{name}'"
            )
        samples = split.take(config.calibration.samples).inputs
        first = context.recipe.model.inputs[0].shape[0]
        batch = first if isinstance(first, int) and first > 0 else 16
    info = quantize(source, target, config, samples, batch)
    return {"mode": config.mode, "weights": config.weights, **info}
