"""Latency of ONNX models in onnxruntime, baseline and compressed interleaved in one process
so that machine drift hits both alike. Warm-up runs are discarded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from compress.errors import ModelError
from compress.generated_inputs import generated_array
from compress.onnx.runtime import make_session, timer
from compress.recipe import InputSpec, LatencySpec


class MissingDimension(ModelError):
    """A dynamic dimension the latency inputs need a size for (a recipe error where the recipe
    is known: compress.measure.macs.macs_inputs)."""


def latency_inputs(
    specs: list[InputSpec], spec: LatencySpec, samples: list[np.ndarray] | None
) -> list[np.ndarray]:
    """Inputs of batch `spec.batch_size`: real samples when there are enough, else generated
    (see compress.generated_inputs)."""
    if samples is not None and len(samples[0]) >= spec.batch_size:
        return [np.ascontiguousarray(x[: spec.batch_size]) for x in samples]
    rng = np.random.default_rng(0)
    arrays = []
    for input_spec in specs:
        shape = []
        for axis, dim in enumerate(input_spec.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif axis == 0:
                shape.append(spec.batch_size)
            elif isinstance(dim, str) and dim in spec.dims:
                shape.append(spec.dims[dim])
            else:
                raise MissingDimension(
                    f"input {input_spec.name!r} axis {axis} ({dim}) is dynamic: give its size "
                    f"in measure.latency.dims (named dimension) or a fixed size in model.inputs"
                )
        arrays.append(generated_array(input_spec, shape, rng))
    return arrays


def measure_latency(
    models: dict[str, Path], spec: LatencySpec, inputs: list[np.ndarray]
) -> dict[str, dict]:
    """{label: {p50, p90, mean, runs, samples}} in milliseconds, runs interleaved across
    models. Warm-up and timing together stop after `spec.max_seconds` (at least one run of
    each model is timed): `runs` says how many were."""
    timers = {
        label: timer(make_session(path, spec.threads, spec.device), inputs, spec.device)
        for label, path in models.items()
    }
    deadline = time.perf_counter() + spec.max_seconds
    for _ in range(spec.warmup):
        if time.perf_counter() > deadline:
            break
        for run in timers.values():
            run()
    times: dict[str, list[float]] = {label: [] for label in timers}
    labels = list(timers)
    for index in range(spec.runs):
        if index and time.perf_counter() > deadline:
            break
        order = labels if index % 2 == 0 else labels[::-1]
        for label in order:
            times[label].append(timers[label]())
    return {label: latency_stats(values) for label, values in times.items()}


def latency_stats(values: list[float]) -> dict:
    """p50, p90 and mean of per-run times (ms), the number of runs, and the runs themselves
    (`samples`, in run order, for the latency distribution in report.html)."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(array, 50)), 4),
        "p90": round(float(np.percentile(array, 90)), 4),
        "mean": round(float(array.mean()), 4),
        "runs": len(values),
        "samples": [round(float(value), 4) for value in array],
    }
