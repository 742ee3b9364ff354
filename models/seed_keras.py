"""The seed Keras model (tf-keras Sequential: Dense(128, relu) on 10 inputs, Dense(10, softmax))
and a synthetic ten-class dataset with one-hot labels for categorical cross-entropy."""

from __future__ import annotations

import numpy as np
import tf_keras

SAMPLES = 2000


def build() -> tf_keras.Model:
    return tf_keras.Sequential(
        [
            tf_keras.Input((10,), name="features"),
            tf_keras.layers.Dense(128, activation="relu", name="hidden"),
            tf_keras.layers.Dense(10, activation="softmax", name="output"),
        ],
        name="seed_keras",
    )


def load() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Ten classes: the argmax of a fixed random linear map of the inputs, seeded."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((SAMPLES, 10)).astype(np.float32)
    labels = np.argmax(x @ rng.standard_normal((10, 10)), axis=1)
    y = np.eye(10, dtype=np.float32)[labels]
    split = int(SAMPLES * 0.8)
    return {
        "train": (x[:split], y[:split]),
        "val": (x[split:], y[split:]),
        "calibration": (x[:256], y[:256]),
    }
