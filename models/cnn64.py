"""A conv-heavy PyTorch CNN for 3x64x64 images (10 classes, 1.2M parameters) and synthetic data,
for measuring INT8 latency on CNNs (benchmarks/quantize.py).

It is not trained: the weights are a seeded random initialisation (`torch.manual_seed(0)`), and
the BatchNorm running statistics are then estimated on seeded synthetic images so that every
layer's activations are normalised the way a trained network's are, and the classifier's input is
standardised the same way (otherwise every image gets nearly the same logits, and top-1
agreement would be trivially high). Its labels are arbitrary, so
accuracy means nothing here; what matters is latency, and as fidelity the top-1 agreement of a
quantized copy with this fp32 model.

Layout: a 3x3 stem at 64x64, then four stride-2 stages (32, 64, 128, 256 channels; two 3x3
Conv-BN-ReLU layers in the last three), global average pooling and one Linear layer; about 56M
multiply-adds per image.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

IMAGE_SIZE = 64
CLASSES = 10
VAL_SAMPLES = 64
CALIBRATION_SAMPLES = 128
BN_SAMPLES = 256
#: Sides of the random grids upsampled and summed into an image, coarsest (strongest) first.
GRIDS = (4, 8, 16, 32, 64)
SEED = 0

#: (output channels, layers) per stride-2 stage, after the stem.
STAGES = ((32, 1), (64, 2), (128, 2), (256, 2))
STEM_CHANNELS = 32


def conv_bn_relu(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    ]


class CNN64(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers = conv_bn_relu(3, STEM_CHANNELS, 1)
        channels = STEM_CHANNELS
        for width, depth in STAGES:
            for index in range(depth):
                layers += conv_bn_relu(channels, width, 2 if index == 0 else 1)
                channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def images(count: int, seed: int) -> np.ndarray:
    """Smooth random images (count, 3, 64, 64), float32, zero mean and unit variance overall.

    Like natural images, their spectrum falls with frequency: Gaussian noise on grids of 4, 8,
    16, 32 and 64 pixels, upsampled bicubically and summed with amplitude halving per octave.
    (Purely low-frequency images would leave the edge-detecting filters almost no signal, and
    quantization noise would swamp them.)"""
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros(count, 3, IMAGE_SIZE, IMAGE_SIZE)
    for octave, side in enumerate(GRIDS):
        coarse = torch.randn(count, 3, side, side, generator=generator)
        fine = nn.functional.interpolate(
            coarse, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bicubic", align_corners=False
        )
        total += fine * 0.5**octave
    total = (total - total.mean()) / total.std()
    return total.numpy().astype(np.float32)


def labels(count: int, seed: int) -> np.ndarray:
    """Arbitrary int64 labels in [0, 10): the model is untrained, so they carry no meaning."""
    return np.random.default_rng(seed).integers(0, CLASSES, size=count, dtype=np.int64)


def build() -> CNN64:
    """The seeded network, BatchNorm statistics estimated on synthetic images, in eval mode."""
    torch.manual_seed(SEED)
    model = CNN64()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the batches below
    model.train()
    calibration = torch.from_numpy(images(BN_SAMPLES, SEED + 100))
    with torch.no_grad():
        for batch in calibration.chunk(4):
            model(batch)
        model.eval()
        standardize_classifier(model, model.pool(model.features(calibration)).flatten(1))
    return model


def standardize_classifier(model: CNN64, pooled: torch.Tensor) -> None:
    """Fold per-feature standardisation of the pooled features into the Linear layer, so that
    the logits vary from image to image instead of being dominated by their common mean."""
    mean, std = pooled.mean(0), pooled.std(0).clamp_min(1e-6)
    weight = model.fc.weight / std
    model.fc.bias -= weight @ mean
    model.fc.weight.copy_(weight)


def load() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"val": 64 images, "calibration": 128 images}, each (x float32 N,3,64,64; y int64 N);
    fixed and disjoint (different seeds), and disjoint from the BatchNorm images."""
    return {
        "val": (images(VAL_SAMPLES, SEED + 1), labels(VAL_SAMPLES, SEED + 1)),
        "calibration": (
            images(CALIBRATION_SAMPLES, SEED + 2),
            labels(CALIBRATION_SAMPLES, SEED + 2),
        ),
    }
