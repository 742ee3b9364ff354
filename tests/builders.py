"""Small models for the backend tests: the same 10 -> 48 -> 2 MLP in each framework."""

from __future__ import annotations


def torch_mlp():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 48), nn.ReLU(), nn.Linear(48, 2))


def keras_mlp():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((10,), name="features"),
            keras.layers.Dense(48, activation="relu", name="hidden"),
            keras.layers.Dense(2, name="out"),
        ]
    )


def tf_keras_mlp():
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    return tf_keras.Sequential(
        [
            tf_keras.Input((10,), name="features"),
            tf_keras.layers.Dense(48, activation="relu", name="hidden"),
            tf_keras.layers.Dense(2, name="out"),
        ]
    )


def keras_with_batchnorm():
    import keras

    return keras.Sequential(
        [
            keras.Input((10,), name="features"),
            keras.layers.Dense(48, name="hidden"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(2, name="out"),
        ]
    )


def tf_keras_subclassed():
    import tf_keras

    class TwoLayers(tf_keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = tf_keras.layers.Dense(48, activation="relu", name="hidden")
            self.out = tf_keras.layers.Dense(2, name="out")

        def call(self, inputs):
            return self.out(self.hidden(inputs))

    return TwoLayers()


def torch_wide_mlp():
    """A Linear-heavy model (about 0.4M weights) for int4 weight-only quantization."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 512),
        nn.ReLU(),
        nn.Linear(512, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 2),
    )
