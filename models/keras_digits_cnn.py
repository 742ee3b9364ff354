"""The digits CNN as a Keras 3 model (channels-last): two 3x3 convolutions and two dense layers."""

from __future__ import annotations

import keras


def build() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="input"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(64, activation="relu", name="fc1"),
            keras.layers.Dense(10, name="fc2"),
        ],
        name="digits_cnn",
    )
