"""Model builders and data of benchmarks/quantize.py that benchmarks/corpus_models.py lacks:
keras.applications MobileNetV2 and MobileNetV3Small at 96x96, a ConvNeXt-style transformers
classifier at 3x128x128 (random weights from the libraries' own configs, no download) and token
ids for the GPT-2-style decoder. Recipes reference them as `quantize_models.py:fn`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_models import _batchnorm_from_data, logits_of

#: GPT-2's vocabulary (GPT2Config's default, which corpus_models.gpt2 uses).
GPT2_VOCAB = 50257
SEQ_LEN = 128
SEQUENCES = 64


def keras_mobilenetv2():
    """keras.applications MobileNetV2, 96x96x3, 10 classes, BatchNorm statistics from images."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=10)
    return _batchnorm_from_data(model)


def tf_keras_mobilenetv2():
    """The same MobileNetV2 built by tf-keras (Keras 2), the kind tfmot works with."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=10)
    return _batchnorm_from_data(model)


def keras_mobilenetv3small():
    """keras.applications MobileNetV3Small (hard-swish, squeeze-excite), 96x96x3, 10 classes,
    BatchNorm statistics from images."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV3Small(weights=None, input_shape=(96, 96, 3), classes=10)
    return _batchnorm_from_data(model)


def convnext():
    """transformers ConvNextForImageClassification (7x7 depthwise convs, LayerNorm, GELU),
    depths 2-2-6-2, widths 48-384, 3x128x128 input, returning the logits."""
    import torch
    from transformers import ConvNextConfig, ConvNextForImageClassification

    torch.manual_seed(0)
    config = ConvNextConfig(num_labels=10, depths=[2, 2, 6, 2], hidden_sizes=[48, 96, 192, 384])
    return logits_of(ConvNextForImageClassification(config)).eval()


def gpt2_tokens() -> dict:
    """64 sequences of 128 seeded random GPT-2 token ids (the decoder's weights are random, so
    real text would mean no more): calibration for NNCF, fidelity for every column."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, GPT2_VOCAB, (SEQUENCES, SEQ_LEN), dtype=np.int64)
    return {"val": [ids]}
