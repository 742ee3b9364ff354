"""Train the example models from scratch and save their weights as safetensors.

    python models/train.py [OUT_DIR]    # default: models/

Deterministic (fixed seeds); takes a few seconds on a CPU.
"""

from __future__ import annotations

import sys
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


def main(out_dir: Path = HERE, epochs_scale: float = 1.0) -> dict[str, float]:
    """Train both models into out_dir; returns their validation accuracies."""
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
    return results


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    for model_name, accuracy in main(target).items():
        print(f"{model_name}: val accuracy {accuracy:.4f}")
