"""The PyTorch side of CompressionSession: the neutral pruner's masks and distillation inside
a user's own training loop (DistributedDataParallel included: masks are computed from identical
weights on every rank, so every rank gets the same masks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.backends import distill_models
from compress.backends.base import PassContext
from compress.backends.torch.distillation import DistillationLoss
from compress.backends.torch.export import example_inputs
from compress.backends.torch.layers import module_layers
from compress.backends.torch.pruning import TorchWeights
from compress.backends.torch.training import loss_function
from compress.errors import ModelError, UsageError
from compress.passes import PassRecord
from compress.passes.distill import DistillPass, user_loop_record
from compress.passes.prune import PrunePass
from compress.passes.pruning import Pruner, pruner_for, select
from compress.passes.targets import TargetError


class TorchSession:
    """Prune masks moved on the user's optimizer steps, and the recovery distillation loss;
    the ONNX passes run at export."""

    def __init__(
        self, model: nn.Module, context: PassContext, steps_per_epoch: int, epochs: int
    ) -> None:
        self.module = (
            model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        )
        self.recipe = recipe = context.recipe
        self.pruners: list[tuple[int, Pruner]] = []
        self.objective: DistillationLoss | None = None
        self.steps = 0
        loss = recipe.train.loss if recipe.train else "cross_entropy"
        self.criterion = loss_function(loss)
        for index, config in enumerate(recipe.passes):
            if isinstance(config, PrunePass):
                self.pruners.append((index, self._pruner(index, config, steps_per_epoch, epochs)))
            elif isinstance(config, DistillPass):
                teacher, _ = distill_models(context.backend, config, context)
                self.objective = DistillationLoss(
                    teacher,
                    self.module,
                    config,
                    loss,
                    example_inputs(recipe.model.inputs),
                    [spec.name for spec in recipe.model.inputs],
                )
            elif config.stage == "model":
                raise UsageError(f"a PyTorch session cannot run pass {config.type!r}")

    def _pruner(self, index: int, config: PrunePass, per_epoch: int, epochs: int) -> Pruner:
        try:
            names = select(config, module_layers(self.module))
        except TargetError as exc:
            raise self.recipe.error_at(("passes", index, *exc.loc), exc.message) from None
        pruner = pruner_for(config, TorchWeights(self.module, names))
        pruner.on_train_begin(per_epoch, per_epoch * epochs)
        return pruner

    def step(self) -> None:
        self.steps += 1
        for _, pruner in self.pruners:
            pruner.after_step(self.steps)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, inputs: Any) -> torch.Tensor:
        if self.objective is None:
            return self.criterion(outputs, targets)
        if inputs is None:
            raise ModelError("session.loss needs the batch inputs for distillation")
        batch = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
        return self.objective(outputs, targets, batch)

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters the session adds (feature-distillation projections)."""
        return list(self.objective.projections.parameters()) if self.objective else []

    def finalize(self) -> tuple[nn.Module, list[PassRecord]]:
        records = []
        for _, pruner in self.pruners:
            info = pruner.finish({"steps": self.steps, "loop": "user"})
            records.append(pruner.config.record_of(info, seconds=None))
        if self.objective is not None:
            self.objective.remove()
            config = self.objective.config
            records.append(config.record_of(user_loop_record(config), seconds=None))
        return self.module.eval(), records
