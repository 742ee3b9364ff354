"""The seed MLP (10 inputs -> 50 hidden, ReLU -> 2 outputs) and its synthetic data."""

from __future__ import annotations

import numpy as np
from torch import nn

SAMPLES = 2000


def build() -> nn.Module:
    return nn.Sequential(nn.Linear(10, 50), nn.ReLU(), nn.Linear(50, 2))


def load() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A fixed two-class problem: a linear rule plus an interaction term, seeded."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((SAMPLES, 10)).astype(np.float32)
    direction = rng.standard_normal(10)
    y = ((x @ direction + 0.8 * x[:, 0] * x[:, 1]) > 0).astype(np.int64)
    split = int(SAMPLES * 0.8)
    return {
        "train": (x[:split], y[:split]),
        "val": (x[split:], y[split:]),
        "calibration": (x[:256], y[:256]),
    }
