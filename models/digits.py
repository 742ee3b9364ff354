"""scikit-learn's 8x8 digits (shipped with the package, no download) in deterministic splits."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

VAL_FRACTION = 0.2
CALIBRATION_SAMPLES = 256


def load(layout: str = "nchw") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train", "val", "calibration"}: float32 images in [0, 1] and int64 labels.

    `layout` is "nchw" (PyTorch, shape N,1,8,8) or "nhwc" (Keras, shape N,8,8,1). The
    calibration split is the first 256 training images; val never overlaps train.
    """
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    images = images[:, None] if layout == "nchw" else images[..., None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    n_val = int(len(labels) * VAL_FRACTION)
    val, train = order[:n_val], order[n_val:]
    return {
        "train": (images[train], labels[train]),
        "val": (images[val], labels[val]),
        "calibration": (images[train[:CALIBRATION_SAMPLES]], labels[train[:CALIBRATION_SAMPLES]]),
    }


def load_nhwc() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The same splits in Keras' channels-last layout (N, 8, 8, 1)."""
    return load("nhwc")
