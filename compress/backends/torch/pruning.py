"""Magnitude and n:m pruning for PyTorch: the neutral `Pruner` (compress/passes/pruning.py) over a
small adapter. Masks are held outside the model and re-applied after each optimizer step, so
nothing (no weight_orig/weight_mask, no parametrization) reaches the export."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from compress.backends.base import PassContext
from compress.backends.torch.distillation import objective_for
from compress.backends.torch.layers import is_transposed_linear, module_layers
from compress.backends.torch.training import train
from compress.passes.lifecycle import TrainingHook
from compress.passes.prune import MagnitudePrune, NMPrune, PruneBase
from compress.passes.pruning import IN, OUT, layout, run_prune, select

TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def weight_layout(module: nn.Module) -> tuple[str, ...]:
    """Named axes of a module's weight: torch stores (out, in, *kernel), transformers' Conv1D
    (in, out), ConvTranspose (in, out/groups, *kernel)."""
    kernel_dims = module.weight.dim() - 2
    if is_transposed_linear(module) or isinstance(module, TRANSPOSED):
        return layout(IN, OUT, kernel_dims=kernel_dims)
    return layout(OUT, IN, kernel_dims=kernel_dims)


class TorchWeights:
    """The pruner's adapter over the named modules' weights (masks kept on their device)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        modules = dict(model.named_modules())
        self.modules = {name: modules[name] for name in names}
        self.weights = {name: module.weight for name, module in self.modules.items()}
        self.masks: dict[str, torch.Tensor] = {}

    def layouts(self) -> dict[str, tuple[str, ...]]:
        return {name: weight_layout(module) for name, module in self.modules.items()}

    def read(self) -> dict[str, np.ndarray]:
        return {name: w.detach().cpu().numpy() for name, w in self.weights.items()}

    def set_masks(self, masks: Mapping[str, np.ndarray]) -> None:
        for name, mask in masks.items():
            self.masks[name] = torch.from_numpy(mask).to(self.weights[name].device)

    @torch.no_grad()
    def apply_masks(self) -> None:
        # Fill with +0.0 rather than multiply: w * 0 keeps the sign (-0.0), and half the
        # zeros would differ by a bit, which gzip pays for.
        for name, mask in self.masks.items():
            self.weights[name].masked_fill_(~mask, 0.0)


def apply_prune(
    model: nn.Module, config: MagnitudePrune | NMPrune, context: PassContext
) -> tuple[nn.Module, dict]:
    """Run a weight prune pass: select layers, prune (one-shot or scheduled), fine-tune, verify."""
    config.engine_for("torch", config.trains, config.scope == "global")  # refuses engine: tfmot
    weights = TorchWeights(model, select(config, module_layers(model)))
    return model, run_prune(
        config, weights, lambda pruner: fine_tune(model, config, context, [pruner])
    )


def fine_tune(
    model: nn.Module, config: PruneBase, context: PassContext, hooks: list[TrainingHook]
) -> dict:
    """Train a prune pass's model for train.epochs with its hooks (the masks), distilling from
    an earlier recovery distill pass's teacher when there is one."""
    inputs = context.training(config)
    with objective_for(model, context) as objective:
        return train(
            model,
            inputs.spec,
            inputs.split,
            context.recipe.model.inputs,
            inputs.batch_size,
            hooks=hooks,
            reporter=context.reporter,
            description="pruning + fine-tuning" if config.schedule else "fine-tuning",
            objective=objective,
        )
