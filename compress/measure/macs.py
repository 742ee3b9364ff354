"""MACs of one sample of each ONNX model, counted on the graph (compress/onnx/macs.py)
with the first sample of the inputs latency is measured on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.data import Splits
from compress.measure.latency import MissingDimension, latency_inputs
from compress.onnx.inspect import graph_inputs
from compress.onnx.macs import count_macs
from compress.recipe import Recipe
from compress.samples import parity_samples


def macs_inputs(recipe: Recipe, data: Splits) -> list[np.ndarray]:
    """The inputs MACs are counted on: those latency is timed on (without latency: one sample
    of the val split, else of the calibration split, else generated from model.inputs)."""
    latency = recipe.measure.latency
    if latency is None:
        return parity_samples(recipe, data, count=1).arrays
    val = data.get("val")
    try:
        return latency_inputs(recipe.model.inputs, latency, val.inputs if val else None)
    except MissingDimension as exc:
        raise recipe.error_at(("measure", "latency", "dims"), str(exc)) from None


def measure_macs(paths: dict[str, Path], inputs: list[np.ndarray]) -> dict[str, int]:
    """{label: MACs of one sample}: the first sample of `inputs` (in the models' input order)
    fed to each model."""
    sample = [np.ascontiguousarray(array[:1]) for array in inputs]
    return {
        label: count_macs(path, dict(zip(graph_inputs(path), sample, strict=True)))
        for label, path in paths.items()
    }
