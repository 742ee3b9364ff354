"""The built-in PyTorch trainer: the recipe's `train` section over the `train` split.

Passes plug in through hooks (mask updates after each optimizer step) instead of owning loops.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from torch import nn

from compress.data import Split
from compress.errors import ModelError
from compress.progress import Reporter
from compress.recipe import InputSpec, OptimizerSpec, TrainSpec

DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
}


class TrainingHook(Protocol):
    """Called by the trainer; pruning schedules and masks live in hooks."""

    def on_train_begin(self, steps_per_epoch: int, total_steps: int) -> None: ...

    def after_step(self, step: int) -> None: ...

    def on_train_end(self) -> None: ...


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


def loss_function(name: str) -> nn.Module:
    return {
        "cross_entropy": nn.CrossEntropyLoss(),
        "mse": nn.MSELoss(),
        "bce_with_logits": nn.BCEWithLogitsLoss(),
    }[name]


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
    if split.targets is None:
        raise ModelError("training needs targets in the train split")
    torch.manual_seed(spec.seed)
    generator = torch.Generator().manual_seed(spec.seed)
    features = to_tensors(split.inputs, inputs)
    targets = torch.as_tensor(split.targets)
    targets = targets.long() if spec.loss == "cross_entropy" else targets.float()
    criterion = loss_function(spec.loss)
    trainable = list(model.parameters()) + (list(objective.parameters()) if objective else [])
    optimizer = make_optimizer(spec.optimizer, trainable)
    steps_per_epoch = math.ceil(len(split) / batch_size)
    for hook in hooks:
        hook.on_train_begin(steps_per_epoch, spec.epochs * steps_per_epoch)
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
                if objective is None:
                    loss = criterion(outputs, targets[index])
                else:
                    loss = objective(outputs, targets[index], batch)
                if not torch.isfinite(loss):
                    raise ModelError(f"training diverged: loss is {loss.item()} at epoch {epoch}")
                loss.backward()
                optimizer.step()
                step += 1
                for hook in hooks:
                    hook.after_step(step)
                loss_value = loss.item()
                advance(status=f"epoch {epoch + 1}/{spec.epochs} loss {loss_value:.4f}")
    model.eval()
    for hook in hooks:
        hook.on_train_end()
    return {"epochs": spec.epochs, "steps": step, "final_loss": round(loss_value, 6)}
