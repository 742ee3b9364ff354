"""The built-in PyTorch trainer: the recipe's `train` section over the `train` split.

Passes plug in through the lifecycle hooks of compress/passes/lifecycle.py (mask updates after
each optimizer step) instead of owning loops.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from compress.data import Split
from compress.errors import ModelError
from compress.passes.lifecycle import TrainingHook
from compress.progress import Reporter
from compress.recipe import InputSpec, OptimizerSpec, TrainSpec

DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
}


def to_tensors(arrays: list[np.ndarray], specs: list[InputSpec]) -> list[torch.Tensor]:
    """Numpy inputs as tensors of the dtypes the recipe declares."""
    return [torch.as_tensor(a, dtype=DTYPES[s.dtype]) for a, s in zip(arrays, specs, strict=True)]


def make_optimizer(spec: OptimizerSpec, params) -> torch.optim.Optimizer:
    if spec.type == "sgd":
        return torch.optim.SGD(
            params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay
        )
    optimizer = torch.optim.AdamW if spec.type == "adamw" else torch.optim.Adam
    return optimizer(params, lr=spec.lr, weight_decay=spec.weight_decay)


LOSS_SHAPES = {
    "cross_entropy": "outputs N×C with integer class targets N, outputs N×…×C with integer "
    "targets N×… (a class per position, e.g. token logits N×T×V with targets N×T), outputs "
    "N×C×d… with targets N×d… (torch's classes-second layout), or class probabilities N×C",
    "mse": "targets of the outputs' shape (outputs N×1 also take targets N)",
    "bce_with_logits": "targets of the outputs' shape (outputs N×1 also take targets N)",
}


class RecipeLoss(nn.Module):
    """The recipe's `train.loss`, which first fits the targets to the outputs (see LOSS_SHAPES):
    shapes the loss cannot take are a ModelError naming the loss, both shapes and what would
    work, instead of the framework's error or a silent broadcast (N×1 outputs against N
    targets)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.function = {
            "cross_entropy": nn.CrossEntropyLoss(),
            "mse": nn.MSELoss(),
            "bce_with_logits": nn.BCEWithLogitsLoss(),
        }[name]

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        fitted = (
            _cross_entropy_pair(outputs, targets)
            if self.name == "cross_entropy"
            else _same_shape_pair(outputs, targets)
        )
        if fitted is None:
            raise ModelError(
                f"train.loss {self.name}: model outputs {tuple(outputs.shape)} and targets "
                f"{tuple(targets.shape)} do not fit; it takes {LOSS_SHAPES[self.name]}"
            )
        return self.function(*fitted)


def _cross_entropy_pair(
    outputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor] | None:
    shape, wanted = tuple(outputs.shape), tuple(targets.shape)
    if outputs.dim() >= 2 and wanted == shape[:-1]:  # classes last: N×C, or N×T×V tokens
        return outputs.reshape(-1, shape[-1]), targets.reshape(-1).long()
    if outputs.dim() >= 3 and wanted == shape[:1] + shape[2:]:  # classes second: N×C×H×W
        return outputs, targets.long()
    if outputs.dim() == 2 and wanted == shape:  # class probabilities or one-hot rows
        return outputs, targets.to(outputs.dtype)
    return None


def _same_shape_pair(
    outputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor] | None:
    if targets.shape == outputs.shape:
        return outputs, targets.to(outputs.dtype)
    if tuple(outputs.shape) == (*targets.shape, 1):
        return outputs, targets.unsqueeze(-1).to(outputs.dtype)
    return None


def loss_function(name: str) -> RecipeLoss:
    return RecipeLoss(name)


def train(
    model: nn.Module,
    spec: TrainSpec,
    split: Split,
    inputs: list[InputSpec],
    batch_size: int,
    hooks: list[TrainingHook],
    reporter: Reporter,
    description: str = "fine-tuning",
    objective: nn.Module | None = None,
) -> dict:
    """Train in place for spec.epochs; returns {"epochs", "steps", "final_loss"}.

    `objective(outputs, targets, inputs)` replaces the recipe's loss (distillation); its own
    parameters (feature projections) are trained too.
    """
    labels_needed = objective is None or getattr(objective, "needs_targets", True)
    if split.targets is None and labels_needed:
        raise ModelError("training needs targets in the train split")
    torch.manual_seed(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    features = to_tensors(split.inputs, inputs)
    # the loss casts them to what it takes; a teacher-only objective needs none
    targets = None if split.targets is None else torch.as_tensor(split.targets)
    criterion = loss_function(spec.loss)
    trainable = list(model.parameters()) + (list(objective.parameters()) if objective else [])
    optimizer = make_optimizer(spec.optimizer, trainable)
    steps_per_epoch = math.ceil(len(split) / batch_size)
    for hook in hooks:
        hook.on_start(steps_per_epoch, spec.epochs * steps_per_epoch)
    model.train()
    step, loss_value = 0, float("nan")
    with reporter.bar(description, spec.epochs * steps_per_epoch) as advance:
        for epoch in range(spec.epochs):
            order = torch.randperm(len(split), generator=generator)
            for start in range(0, len(split), batch_size):
                index = order[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                batch = [x[index] for x in features]
                outputs = model(*batch)
                wanted = None if targets is None else targets[index]
                if objective is None:
                    loss = criterion(outputs, wanted)
                else:
                    loss = objective(outputs, wanted, batch)
                if not torch.isfinite(loss):
                    raise ModelError(f"training diverged: loss is {loss.item()} at epoch {epoch}")
                loss.backward()
                optimizer.step()
                step += 1
                for hook in hooks:
                    hook.on_update(step)
                loss_value = loss.item()
                advance(status=f"epoch {epoch + 1}/{spec.epochs} loss {loss_value:.4f}")
    model.eval()
    for hook in hooks:
        hook.on_end()
    return {"epochs": spec.epochs, "steps": step, "final_loss": round(loss_value, 6)}
