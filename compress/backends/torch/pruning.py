"""Magnitude pruning for PyTorch: masks held outside the model and re-applied after each
optimizer step, so nothing (no weight_orig/weight_mask, no parametrization) reaches the export."""

from __future__ import annotations

import torch
from torch import nn

from compress.backends.base import PassContext
from compress.backends.torch.distillation import objective_for
from compress.backends.torch.layers import input_axis, module_layers
from compress.backends.torch.training import train
from compress.errors import ModelError
from compress.passes.masks import SparsityStepper, achieved_sparsity, check_n_m_fits, compute_masks
from compress.passes.prune import PrunePass, check_achieved, check_schedule_fits, prune_record
from compress.passes.targets import resolve_targets


class MagnitudePruner:
    """Training hook that keeps the chosen layers' smallest weights at zero, on a schedule."""

    def __init__(self, model: nn.Module, layer_names: list[str], config: PrunePass) -> None:
        modules = dict(model.named_modules())
        self.weights = {name: modules[name].weight for name in layer_names}
        self.masks = {
            name: torch.ones_like(w, dtype=torch.bool) for name, w in self.weights.items()
        }
        self.config = config
        self.stepper = SparsityStepper(config)
        self.axis = {name: input_axis(modules[name]) for name in self.weights}
        check_n_m_fits(config, {n: tuple(w.shape) for n, w in self.weights.items()}, self.axis)

    @torch.no_grad()
    def set_sparsity(self, sparsity: float) -> None:
        """Recompute the masks (numpy, shared with the other backends) and apply them."""
        arrays = {name: w.detach().cpu().numpy() for name, w in self.weights.items()}
        for name, mask in compute_masks(self.config, arrays, sparsity, self.axis).items():
            self.masks[name] = torch.from_numpy(mask).to(self.weights[name].device)
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        # Fill with +0.0 rather than multiply: w * 0 keeps the sign (-0.0), and half the
        # zeros would differ by a bit, which gzip pays for.
        for name, weight in self.weights.items():
            weight.masked_fill_(~self.masks[name], 0.0)

    def on_train_begin(self, steps_per_epoch: int, total_steps: int) -> None:
        check_schedule_fits(self.config, steps_per_epoch, total_steps)
        sparsity = self.stepper.start(steps_per_epoch)
        if sparsity is not None:
            self.set_sparsity(sparsity)

    def after_step(self, step: int) -> None:
        sparsity = self.stepper.after(step)
        if sparsity is None:
            self.apply_masks()
        else:
            self.set_sparsity(sparsity)

    def on_train_end(self) -> None:
        self.apply_masks()

    def achieved(self) -> tuple[float, dict[str, float]]:
        return achieved_sparsity({n: w.detach().cpu().numpy() for n, w in self.weights.items()})


def apply_prune(
    model: nn.Module, config: PrunePass, context: PassContext
) -> tuple[nn.Module, dict]:
    """Run a prune pass: select layers, prune (one-shot or scheduled), fine-tune, verify."""
    if config.engine == "tfmot":
        raise ModelError("prune: engine tfmot is for tf-keras models; PyTorch uses native masks")
    layers = resolve_targets(config.targets, config.ignore, module_layers(model), config.type)
    pruner = MagnitudePruner(model, [layer.name for layer in layers], config)
    if config.schedule is None:
        pruner.set_sparsity(pruner.stepper.record_one_shot())
    training = None
    if config.trains:
        inputs = context.training(config)
        with objective_for(model, context) as objective:
            training = train(
                model,
                inputs.spec,
                inputs.split,
                context.recipe.model.inputs,
                inputs.batch_size,
                hooks=[pruner],
                reporter=context.reporter,
                description="pruning + fine-tuning" if config.schedule else "fine-tuning",
                objective=objective,
            )
    achieved, per_layer = pruner.achieved()
    check_achieved(config, achieved)
    return model, prune_record(config, achieved, per_layer, pruner.stepper.updates, training)
