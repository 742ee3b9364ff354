"""The PyTorch side of CompressionSession: each pass's session part (registered as its `session`
role in compress/backends/handlers.py) inside a user's own training loop — the neutral pruner's
masks and the recovery distillation loss (DistributedDataParallel included: masks are computed
from identical weights on every rank, so every rank gets the same masks)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.backends.base import PassContext, distill_models
from compress.backends.torch.distillation import DistillationLoss
from compress.backends.torch.export import example_inputs
from compress.backends.torch.layers import module_layers
from compress.backends.torch.pruning import TorchWeights
from compress.backends.torch.training import loss_function
from compress.errors import ModelError
from compress.passes import PassRecord
from compress.passes.distill import DistillPass, user_loop_record
from compress.passes.prune import PruneBase
from compress.passes.pruning import pruner_for, select
from compress.passes.session_parts import PrunePart, SessionPart, session_parts


class TorchSession:
    """The passes' parts moved on the user's optimizer steps (`step`) and the loss they add
    (`loss`); the ONNX passes run at export."""

    def __init__(
        self, model: nn.Module, context: PassContext, steps_per_epoch: int, epochs: int
    ) -> None:
        self.module = (
            model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        )
        self.context = context
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.objective: DistillationLoss | None = None
        self.steps = 0
        recipe = context.recipe
        self.loss_name = recipe.train.loss if recipe.train else "cross_entropy"
        self.criterion = loss_function(self.loss_name)
        self.parts: list[SessionPart] = session_parts(self, "torch", "a PyTorch session")

    def step(self) -> None:
        self.steps += 1
        for part in self.parts:
            part.on_update(self.steps)

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
        records = [part.finalize({"steps": self.steps, "loop": "user"}) for part in self.parts]
        return self.module.eval(), records


def prune_part(session: TorchSession, config: PruneBase) -> PrunePart:
    """The pruner over the targeted modules' weights, started with the loop's length."""
    names = select(config, module_layers(session.module))
    pruner = pruner_for(config, TorchWeights(session.module, names))
    pruner.on_start(session.steps_per_epoch, session.steps_per_epoch * session.epochs)
    return PrunePart(config, pruner)


class DistillPart:
    """A recovery distill pass in the user's loop: its loss is `session.loss`."""

    def __init__(self, config: DistillPass, objective: DistillationLoss) -> None:
        self.config, self.objective = config, objective

    def on_update(self, step: int) -> None:
        """The loss carries the distillation: nothing moves with the steps."""

    def finalize(self, training: dict) -> PassRecord:
        self.objective.remove()
        return self.config.record_of(user_loop_record(self.config), seconds=None)


def distill_part(session: TorchSession, config: DistillPass) -> DistillPart:
    """The distillation loss the session's `loss` returns from now on."""
    recipe = session.context.recipe
    teacher, _ = distill_models(session.context.backend, config, session.context)
    session.objective = DistillationLoss(
        teacher,
        session.module,
        config,
        session.loss_name,
        example_inputs(recipe.model.inputs),
        [spec.name for spec in recipe.model.inputs],
    )
    return DistillPart(config, session.objective)
