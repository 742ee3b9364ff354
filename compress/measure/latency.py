"""Latency of ONNX models in onnxruntime, baseline and compressed interleaved in one process
so that machine drift hits both alike. Warm-up runs are discarded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.errors import ModelError
from compress.generated_inputs import generated_array
from compress.onnx.runtime import make_session, timer
from compress.recipe import InputSpec, LatencySpec


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
                raise ModelError(
                    f"input {input_spec.name!r} axis {axis} is dynamic: give its size in "
                    f"measure.latency.dims (named dimension) or a fixed size in model.inputs"
                )
        arrays.append(generated_array(input_spec, shape, rng))
    return arrays


def measure_latency(
    models: dict[str, Path], spec: LatencySpec, inputs: list[np.ndarray]
) -> dict[str, dict]:
    """{label: {p50, p90, mean, runs, samples}} in milliseconds, runs interleaved across
    models."""
    timers = {
        label: timer(make_session(path, spec.threads, spec.device), inputs, spec.device)
        for label, path in models.items()
    }
    for _ in range(spec.warmup):
        for run in timers.values():
            run()
    times: dict[str, list[float]] = {label: [] for label in timers}
    labels = list(timers)
    for index in range(spec.runs):
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
