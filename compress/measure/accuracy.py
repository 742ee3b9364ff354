"""Task metrics against labels, and fidelity of compressed outputs against the baseline's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from compress.comparison import check_finite
from compress.errors import ModelError
from compress.measure.language import perplexity
from compress.metrics import SHARE_METRICS
from compress.sources import load_callable


def metric_function(name: str, base_dir: Path) -> Callable[[np.ndarray, np.ndarray], float]:
    """The metric named by `evaluate.metric`: built-in or a "file.py:fn(outputs, targets)"."""
    builtin = {
        "accuracy": accuracy,
        "top5": top5,
        "mse": mse,
        "cosine": cosine,
        "perplexity": perplexity,
    }
    if name in builtin:
        return builtin[name]
    return load_callable(name, base_dir)


def score(name: str, base_dir: Path, outputs: np.ndarray, targets: np.ndarray) -> float:
    """Evaluate a metric; a custom one must return a finite number."""
    try:
        value = float(metric_function(name, base_dir)(outputs, targets))
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"metric {name} failed: {type(exc).__name__}: {exc}") from exc
    if not np.isfinite(value):
        raise ModelError(f"metric {name} returned {value}")
    return value


def class_labels(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Integer labels from integer targets or from one-hot / probability targets."""
    if targets.ndim == outputs.ndim and targets.shape[-1] == outputs.shape[-1] > 1:
        return np.argmax(targets, axis=-1).reshape(-1)
    return targets.reshape(-1)


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, axis=-1) == class_labels(outputs, targets)))


def top5(outputs: np.ndarray, targets: np.ndarray) -> float:
    best = np.argsort(outputs, axis=-1)[:, -5:]
    labels = class_labels(outputs, targets).reshape(-1, 1)
    return float(np.mean(np.any(best == labels, axis=-1)))


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((outputs - targets.reshape(outputs.shape)) ** 2))


def cosine(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean cosine similarity between rows."""
    a = outputs.reshape(len(outputs), -1).astype(np.float64)
    b = targets.reshape(len(targets), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)))


def fidelity(metric: str | None, baseline: np.ndarray, compressed: np.ndarray) -> dict:
    """How closely compressed outputs follow the baseline's on the same inputs.

    Classifiers: top-1 agreement; other outputs: mean cosine similarity. Always with max abs error.
    """
    check_finite([baseline], "the baseline ONNX model's")
    check_finite([compressed], "the compressed ONNX model's")
    if metric in SHARE_METRICS:  # classifiers
        name = "top1_agreement"
        value = float(np.mean(np.argmax(baseline, -1) == np.argmax(compressed, -1)))
    else:
        name, value = "cosine", cosine(compressed, baseline)
    diff = float(np.max(np.abs(baseline.astype(np.float64) - compressed.astype(np.float64))))
    return {"metric": name, "value": round(value, 6), "max_abs_error": round(diff, 6)}
