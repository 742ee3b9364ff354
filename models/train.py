"""Train the example models from scratch and save their weights.

    python models/train.py [OUT_DIR]    # default: models/

PyTorch models are saved as safetensors, Keras models as `.weights.h5` (arrays only).
Deterministic for PyTorch (fixed seeds); takes well under a minute on a CPU.
"""

from __future__ import annotations

import importlib
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras = tf-keras, as compress sets it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import digits  # noqa: E402
import digits_cnn  # noqa: E402
import seed_mlp  # noqa: E402


def fit(model: nn.Module, data: dict, epochs: int, lr: float, batch: int = 64) -> float:
    """Train with Adam and cross-entropy; return validation accuracy."""
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in data["train"])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[index]), y[index]).backward()
            optimizer.step()
    model.eval()
    vx, vy = data["val"]
    with torch.no_grad():
        predicted = model(torch.from_numpy(vx)).argmax(-1).numpy()
    return float(np.mean(predicted == vy))


def fit_keras(model, data: dict, epochs: int, lr: float, from_logits: bool, batch: int = 64):
    """Train a Keras 3 or tf-keras model with Adam; return validation accuracy."""
    api = importlib.import_module(type(model).__module__.split(".")[0])  # keras or tf_keras
    api.utils.set_random_seed(0)
    x, y = data["train"]
    loss = (
        api.losses.SparseCategoricalCrossentropy
        if y.ndim == 1
        else (api.losses.CategoricalCrossentropy)
    )
    model.compile(
        optimizer=api.optimizers.Adam(learning_rate=lr), loss=loss(from_logits=from_logits)
    )
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    vx, vy = data["val"]
    labels = vy if vy.ndim == 1 else vy.argmax(1)
    return float(np.mean(model.predict(vx, verbose=0).argmax(1) == labels))


def main(out_dir: Path = HERE, epochs_scale: float = 1.0) -> dict[str, float]:
    """Train every example model into out_dir; returns their validation accuracies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, module, data, epochs, lr in (
        ("digits_cnn", digits_cnn, digits.load(), 20, 2e-3),
        ("seed_mlp", seed_mlp, seed_mlp.load(), 40, 3e-3),
    ):
        torch.manual_seed(0)
        model = module.build()
        results[name] = fit(model, data, max(1, round(epochs * epochs_scale)), lr)
        save_file(model.state_dict(), str(out_dir / f"{name}.safetensors"))
    import keras_digits_cnn
    import seed_keras

    for name, module, data, epochs, lr, from_logits in (
        ("keras_digits_cnn", keras_digits_cnn, digits.load_nhwc(), 20, 2e-3, True),
        ("seed_keras", seed_keras, seed_keras.load(), 30, 3e-3, False),
    ):
        model = module.build()
        results[name] = fit_keras(
            model, data, max(1, round(epochs * epochs_scale)), lr, from_logits
        )
        clean = module.build()  # saved without optimizer state
        clean.set_weights(model.get_weights())
        clean.save_weights(str(out_dir / f"{name}.weights.h5"))
    return results


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for model_name, accuracy in main(target).items():
        print(f"{model_name}: val accuracy {accuracy:.4f}")
