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


def torch_outlier_mlp():
    """A 3-layer MLP whose middle layer has a few huge weights (on inputs that are always 0):
    per-tensor INT8 rounds that layer's other weights to zero, so quantizing it, and only it,
    costs accuracy (the fallback's case)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    with torch.no_grad():  # the huge weights read 4 units that ReLU always zeroes
        model[0].weight[:4] = 0.0
        model[0].bias[:4] = -1.0
        model[2].weight[:, :4] = 60.0
    return model.eval()


def outlier_data():
    """Inputs, and labels that the float model gets right (its own predictions)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(1)
    splits = {}
    for name, count in (("calibration", 64), ("val", 128)):
        x = rng.normal(size=(count, 16)).astype(np.float32)
        with torch.no_grad():
            y = torch_outlier_mlp()(torch.from_numpy(x)).argmax(1).numpy()
        splits[name] = (x, y)
    return splits


def torch_depthwise_block():
    """Conv stem, a depthwise + pointwise pair with a residual add, pooled into a classifier:
    every kind of node the speed-aware placement groups apart."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, padding=1)
            self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16)
            self.pointwise = nn.Conv2d(16, 16, 1)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            x = x + torch.relu(self.pointwise(torch.relu(self.depthwise(x))))
            return self.head(x.mean(dim=(2, 3)))

    torch.manual_seed(0)
    return Block().eval()


def images_3x16():
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        "calibration": rng.uniform(0, 1, (32, 3, 16, 16)).astype(np.float32),
        "val": rng.uniform(0, 1, (16, 3, 16, 16)).astype(np.float32),
    }
