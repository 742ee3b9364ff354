"""ResNet-18 as transformers builds it from its config (random weights: no hub download), as a
module from `pixel_values` to logits, and random images to calibrate, fine-tune and compare on.

With random weights there are no labels to learn: recipes recover what pruning changed by
distilling from the dense model (the teacher is the only target), and score fidelity to it.
"""

from __future__ import annotations

import numpy as np


def build():
    """ResNetForImageClassification with the ResNet-18 layout (basic blocks, 2-2-2-2)."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return self.model(pixel_values=pixel_values).logits

    torch.manual_seed(0)
    config = ResNetConfig(
        embedding_size=64,
        hidden_sizes=[64, 128, 256, 512],
        depths=[2, 2, 2, 2],
        layer_type="basic",
        num_labels=1000,  # ImageNet's classes (the config's default is 2)
    )
    return Logits(ResNetForImageClassification(config)).eval()


def random_images(count: int, side: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (count, 3, side, side)).astype(np.float32)


def images() -> dict:
    """128x128 images: 256 to fine-tune on, 64 to calibrate, 32 to compare."""
    return {
        "train": random_images(256, 128, 1),
        "calibration": random_images(64, 128, 2),
        "val": random_images(32, 128, 3),
    }


def images_small() -> dict:
    """64x64 images, few of them: for tests of the recipe."""
    return {
        "train": random_images(32, 64, 1),
        "calibration": random_images(16, 64, 2),
        "val": random_images(8, 64, 3),
    }
