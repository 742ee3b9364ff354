"""The parts of `compress` beyond its public API (`compress.apply`, `analyze`, `tune`,
`load_recipe`, `Report`) that the benchmarks read. Every such import is here, so that when the
toolkit moves a module the benchmarks change in this one file. None of them imports torch or
TensorFlow (benchmarks/prune_keras.py checks that torch is never imported)."""

from __future__ import annotations

from compress.backends.native_logs import filtered_native_stderr
from compress.cpu import SPEED_FEATURES, cpu_name, speed_features
from compress.measure.weights import summarize
from compress.metrics import LATENCY_NOISE
from compress.onnx.macs import count_macs
from compress.report.schema import ModelMetrics

__all__ = [
    "LATENCY_NOISE",
    "SPEED_FEATURES",
    "ModelMetrics",
    "count_macs",
    "cpu_name",
    "filtered_native_stderr",
    "speed_features",
    "summarize",
]
