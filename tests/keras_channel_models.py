"""Keras models for the channel pruning tests (Keras 3 and tf-keras builds of each), and data.

`cnn` holds every coupling the pruner must get right: Conv-BN-ReLU, a residual Add (two convs in
one group), a DepthwiseConv, a Concatenate of two groups (a BatchNorm and a PReLU across both),
and Flatten -> Dense (interleaved rows). Its BatchNorm statistics are not the defaults, so a
mis-sliced BatchNorm shows in the outputs.
"""

from __future__ import annotations

import importlib

import numpy as np

CLASSES = 10
#: The CNN's widths, and those it has after 50% channel pruning of every group but the head.
WIDTHS = {"stem": 16, "side": 8, "pw": 24, "fc1": 32}
HALVED = {name: width // 2 for name, width in WIDTHS.items()}


def _api(flavor: str):
    return importlib.import_module("tf_keras" if flavor == "tf_keras" else "keras")


def cnn(flavor: str = "keras", widths: dict[str, int] | None = None):
    """The Functional test CNN on 16x16x3 images (widths: see WIDTHS)."""
    api = _api(flavor)
    layers, w = api.layers, widths or WIDTHS
    api.utils.set_random_seed(0)
    x = api.Input((16, 16, 3), name="image")
    s = layers.Conv2D(w["stem"], 3, padding="same", name="stem")(x)
    s = layers.BatchNormalization(name="stem_bn")(s)
    s = layers.ReLU(name="stem_relu")(s)
    b = layers.Conv2D(w["stem"], 3, padding="same", name="res_conv")(s)
    b = layers.BatchNormalization(name="res_bn")(b)
    r = layers.Add(name="res_add")([s, b])
    d = layers.DepthwiseConv2D(3, padding="same", name="dw")(r)
    d = layers.BatchNormalization(name="dw_bn")(d)
    d = layers.ReLU(max_value=6.0, name="dw_relu")(d)
    p = layers.Conv2D(w["pw"], 1, name="pw")(d)
    c = layers.Conv2D(w["side"], 1, name="side")(r)
    cat = layers.Concatenate(name="cat")([p, c])
    cat = layers.BatchNormalization(name="cat_bn")(cat)
    cat = layers.PReLU(name="cat_prelu")(cat)
    pool = layers.MaxPooling2D(4, name="pool")(cat)
    flat = layers.Flatten(name="flatten")(pool)
    h = layers.Dense(w["fc1"], activation="relu", name="fc1")(flat)
    h = layers.Dropout(0.1, name="drop")(h)
    out = layers.Dense(CLASSES, name="head")(h)
    return _varied_batchnorm(api.Model(x, out, name="cnn"))


def tf_keras_cnn():
    return cnn("tf_keras")


def _varied_batchnorm(model):
    """BatchNorm weights and statistics away from their defaults (deterministic)."""
    for index, layer in enumerate(model.layers):
        if type(layer).__name__ == "BatchNormalization":
            rng = np.random.default_rng(index)
            shape = layer.gamma.shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shape),
                    rng.normal(0.0, 0.1, shape),
                    rng.normal(0.0, 0.1, shape),
                    rng.uniform(0.5, 1.5, shape),
                ]
            )
    return model


def images(size: int, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, size, size, 3)).astype(np.float32)


def load_16() -> dict:
    """Random 16x16 images with random labels: enough to prune, check and fine-tune on."""
    labels = np.random.default_rng(5)
    return {
        "train": (images(16, 128, 1), labels.integers(0, CLASSES, 128)),
        "val": (images(16, 16, 2), labels.integers(0, CLASSES, 16)),
    }


def load_32() -> dict:
    return {"val": (images(32, 8, 2), np.zeros(8, np.int64))}


def mobilenet_v2(flavor: str = "keras"):
    """keras.applications MobileNetV2 (alpha 0.35, 32x32, random weights, BatchNorm statistics
    of one random batch so that its outputs depend on its input); tf-keras's with "tf_keras"."""
    api = _api(flavor)
    api.utils.set_random_seed(0)
    model = api.applications.MobileNetV2(
        weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=CLASSES
    )
    norms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    for layer in norms:
        layer.momentum = 0.0
    model(images(32, 16, seed=3), training=True)
    for layer in norms:
        layer.momentum = 0.99
    return model


def tf_keras_mobilenet_v2():
    return mobilenet_v2("tf_keras")


def reshaped(flavor: str = "keras"):
    """Conv -> Reshape -> Conv and Conv -> Lambda -> Dense: the groups before the Reshape and
    the Lambda cannot be followed; the rest can."""
    api = _api(flavor)
    layers = api.layers
    api.utils.set_random_seed(0)
    x = api.Input((8, 8, 3), name="image")
    a = layers.Conv2D(8, 3, padding="same", activation="relu", name="before_reshape")(x)
    a = layers.Reshape((8, 16, 4), name="reshape")(a)
    a = layers.Conv2D(12, 3, padding="same", activation="relu", name="after_reshape")(a)
    a = layers.Conv2D(6, 1, name="before_lambda")(a)
    a = layers.Lambda(lambda t: t * 2.0, name="double")(a)
    a = layers.GlobalAveragePooling2D(name="gap")(a)
    return api.Model(x, layers.Dense(CLASSES, name="head")(a), name="reshaped")


def tf_keras_reshaped():
    return reshaped("tf_keras")


def load_8() -> dict:
    return {"val": (images(8, 8, 2), np.zeros(8, np.int64))}


def subclassed():
    """A Keras 3 subclassed model: it has no config to rebuild from."""
    import keras

    class TwoConvs(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(8, 3, name="conv")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.head = keras.layers.Dense(CLASSES, name="head")

        def call(self, inputs):
            return self.head(self.pool(self.conv(inputs)))

    return TwoConvs()


def zoo(flavor: str = "keras"):
    """Every other layer kind the tracer follows, on 12x12 images: a SeparableConv with depth
    multiplier 2, a ConvTranspose, Subtract/Multiply/Maximum/Average joins, padding, cropping,
    pooling, upsampling, a Concatenate with the model input (fixed channels), a BatchNorm after
    Flatten; and a DepthwiseConv with depth multiplier 2, which leaves its group whole."""
    api = _api(flavor)
    layers = api.layers
    api.utils.set_random_seed(0)
    x = api.Input((12, 12, 3), name="image")
    a = layers.SeparableConv2D(10, 3, depth_multiplier=2, padding="same", name="sep")(x)
    a = layers.BatchNormalization(name="sep_bn")(a)
    a = layers.LeakyReLU(name="leaky")(a)
    b = layers.Conv2DTranspose(10, 3, padding="same", name="tconv")(a)
    b = layers.ELU(name="elu")(b)
    c = layers.Subtract(name="sub")([a, b])
    c = layers.Cropping2D(1, name="crop")(layers.ZeroPadding2D(1, name="pad")(c))
    d = layers.Conv2D(10, 1, activation="swish", name="gate")(c)
    e = layers.Maximum(name="max")([layers.Multiply(name="mul")([c, d]), a])
    e = layers.Average(name="avg")([e, c])
    e = layers.UpSampling2D(2, name="up")(layers.AveragePooling2D(2, name="avg_pool")(e))
    e = layers.Activation("gelu", name="gelu")(layers.SpatialDropout2D(0.1, name="drop")(e))
    f = layers.Conv2D(8, 3, padding="same", name="mix")(layers.Concatenate(name="cat")([x, e]))
    f = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw2")(f)
    g = layers.Flatten(name="flatten")(layers.Conv2D(6, 1, name="narrow")(f))
    g = layers.Dense(12, name="fc")(layers.BatchNormalization(name="flat_bn")(g))
    return _varied_batchnorm(api.Model(x, layers.Dense(3, name="head")(g), name="zoo"))


def tf_keras_zoo():
    return zoo("tf_keras")


def load_12() -> dict:
    return {"val": (images(12, 8, 2), np.zeros(8, np.int64))}
