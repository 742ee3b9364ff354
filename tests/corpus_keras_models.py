"""Public Keras architectures with random weights (no downloads), small enough for the test
corpus: keras.applications for Keras 3, tf_keras.applications for tf-keras (Keras 2).

Freshly initialised, these networks output a constant (activations shrink to ~1e-11 through
the depth), which would make parity and fidelity checks vacuous; `_set_batchnorm_statistics`
gives every BatchNormalization the statistics of one random batch so outputs vary with input."""

from __future__ import annotations

import numpy as np

CLASSES = 10
SAMPLES = 16


def mobilenet_v2():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(64, 64, 3), alpha=0.35, classes=CLASSES
    )
    return _set_batchnorm_statistics(model, 64)


def resnet50():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(96, 96, 3), classes=CLASSES)
    return _set_batchnorm_statistics(model, 96)


def efficientnet_b0():
    """Holds a Normalization layer whose mean and variance Keras' exporter turns into inputs."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.EfficientNetB0(
        weights=None, input_shape=(96, 96, 3), classes=CLASSES
    )
    return _set_batchnorm_statistics(model, 96)


def tf_keras_mobilenet():
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNet(
        weights=None, input_shape=(64, 64, 3), alpha=0.25, classes=CLASSES
    )
    return _set_batchnorm_statistics(model, 64)


def _set_batchnorm_statistics(model, size: int):
    """One training-mode call with momentum 0: moving mean and variance = the batch's."""
    layers = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(_images(size, SAMPLES, seed=2), training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    return model


def normalized_cnn():
    """Input -> Normalization (adapted: distinct mean and variance) -> Conv2D -> Dense; Keras
    3's exporter leaves the mean as a graph input that the graph reads."""
    import keras

    return _normalized_cnn(keras)


def tf_keras_normalized_cnn():
    import tf_keras

    return _normalized_cnn(tf_keras)


def _normalized_cnn(keras):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="input")
    norm = keras.layers.Normalization(name="norm")
    norm.adapt(_images(16, 32, seed=1) * 4.0 + 2.0)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(norm(inputs))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="fc")(x))


def opaque_offset_cnn():
    """A custom layer built in its constructor: Keras records no input shape for it, so the
    constant it subtracts cannot be traced back once the exporter makes it a graph input."""
    import keras

    class Offset(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.offset = keras.ops.convert_to_tensor(np.arange(3, dtype="float32"))
            self.built = True

        def call(self, x):
            return x - self.offset

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), name="input")
    x = keras.layers.Conv2D(8, 3, name="conv")(Offset(name="offset")(inputs))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x))


def load_64() -> dict[str, np.ndarray]:
    return _splits(64)


def load_96() -> dict[str, np.ndarray]:
    return _splits(96)


def load_16() -> dict[str, np.ndarray]:
    return _splits(16)


def _splits(size: int) -> dict[str, np.ndarray]:
    """Random NHWC images in [-1, 1): calibration and validation inputs without labels."""
    return {
        "calibration": _images(size, SAMPLES, seed=0),
        "val": _images(size, SAMPLES, seed=1),
    }


def _images(size: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (count, size, size, 3)).astype(np.float32)
