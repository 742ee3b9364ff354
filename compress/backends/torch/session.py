"""The PyTorch side of CompressionSession: pruning masks and distillation inside a user's own
training loop (DistributedDataParallel included: masks are computed from identical weights on
every rank, so every rank gets the same masks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.backends.torch.distillation import DistillationLoss
from compress.backends.torch.export import example_inputs
from compress.backends.torch.layers import module_layers
from compress.backends.torch.pruning import MagnitudePruner
from compress.backends.torch.training import loss_function
from compress.errors import ModelError
from compress.passes.prune import PrunePass, check_achieved, prune_record
from compress.passes.targets import TargetError, resolve_targets
from compress.recipe import Recipe


class TorchSession:
    def __init__(
        self,
        model: nn.Module,
        recipe: Recipe,
        steps_per_epoch: int,
        epochs: int,
        teachers: dict[int, Any],
    ) -> None:
        self.module = (
            model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        )
        self.recipe = recipe
        self.pruners: list[tuple[int, MagnitudePruner]] = []
        self.objective: DistillationLoss | None = None
        self.steps = 0
        loss = recipe.train.loss if recipe.train else "cross_entropy"
        self.criterion = loss_function(loss)
        for index, config in enumerate(recipe.passes):
            if isinstance(config, PrunePass):
                self.pruners.append((index, self._pruner(index, config, steps_per_epoch, epochs)))
            elif config.type == "distill":
                self.objective = DistillationLoss(
                    teachers[index], self.module, config, loss, example_inputs(recipe.model.inputs)
                )

    def _pruner(
        self, index: int, config: PrunePass, per_epoch: int, epochs: int
    ) -> MagnitudePruner:
        try:
            layers = resolve_targets(
                config.targets, config.ignore, module_layers(self.module), "prune"
            )
        except TargetError as exc:
            raise self.recipe.error_at(("passes", index, *exc.loc), exc.message) from None
        pruner = MagnitudePruner(self.module, [layer.name for layer in layers], config)
        if config.schedule is None:
            pruner.set_sparsity(pruner.stepper.record_one_shot())
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

    def finalize(self) -> tuple[nn.Module, list[dict]]:
        records = []
        for _, pruner in self.pruners:
            pruner.on_train_end()
            achieved, per_layer = pruner.achieved()
            check_achieved(pruner.config, achieved)
            records.append(
                {
                    "type": "prune",
                    **prune_record(
                        pruner.config,
                        achieved,
                        per_layer,
                        pruner.stepper.updates,
                        {"steps": self.steps, "loop": "user"},
                    ),
                }
            )
        if self.objective is not None:
            self.objective.remove()
            records.append(
                {
                    "type": "distill",
                    "mode": "recovery",
                    "loop": "user",
                    "temperature": self.objective.config.temperature,
                    "alpha": self.objective.config.alpha,
                }
            )
        return self.module.eval(), records
