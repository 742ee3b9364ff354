"""A nano digits classifier (PyTorch MLP, 64 -> 32 -> 10, ~2.4k parameters): the student that
the digits CNN teaches in recipes/nano_distill_int4.yaml. Starts from a seeded random init."""

from __future__ import annotations

import torch
from torch import nn


def build() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
