"""Magnitude pruning for PyTorch: masks held outside the model and re-applied after each
optimizer step, so nothing (no weight_orig/weight_mask, no parametrization) reaches the export."""

from __future__ import annotations

import torch
from torch import nn

from compress.backends.base import PassContext
from compress.backends.torch.layers import module_layers
from compress.backends.torch.training import train
from compress.errors import ModelError
from compress.passes.prune import PrunePass, check_achieved
from compress.passes.targets import resolve_targets


class MagnitudePruner:
    """Keeps the smallest-magnitude weights of the chosen layers at zero, on a schedule."""

    def __init__(self, model: nn.Module, layer_names: list[str], config: PrunePass) -> None:
        modules = dict(model.named_modules())
        self.weights = {name: modules[name].weight for name in layer_names}
        self.masks = {
            name: torch.ones_like(w, dtype=torch.bool) for name, w in self.weights.items()
        }
        self.config = config
        self.steps_per_epoch = 1
        self.current = 0.0
        self.updates = 0

    @torch.no_grad()
    def set_sparsity(self, sparsity: float) -> None:
        """Recompute masks so `sparsity` of the weights (per layer or globally) are zero."""
        if self.config.scope == "global":
            magnitudes = torch.cat([w.detach().abs().flatten() for w in self.weights.values()])
            pruned = _smallest(magnitudes, sparsity)
            offset = 0
            for name, weight in self.weights.items():
                size = weight.numel()
                self.masks[name] = ~pruned[offset : offset + size].view_as(weight)
                offset += size
        else:
            for name, weight in self.weights.items():
                self.masks[name] = ~_smallest(weight.detach().abs().flatten(), sparsity).view_as(
                    weight
                )
        self.current = sparsity
        self.updates += 1
        self.apply_masks()

    @torch.no_grad()
    def apply_masks(self) -> None:
        for name, weight in self.weights.items():
            weight.mul_(self.masks[name])

    def on_train_begin(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        if self.config.schedule is not None:
            self.set_sparsity(self._scheduled(0))

    def after_step(self, step: int) -> None:
        """Update masks every few steps while the schedule moves (and on its last step)."""
        schedule = self.config.schedule
        target = self._scheduled(step) if schedule is not None else self.current
        due = schedule is not None and step % schedule.update_every(self.steps_per_epoch) == 0
        if target != self.current and (due or target == self.config.sparsity):
            self.set_sparsity(target)
        else:
            self.apply_masks()

    def on_train_end(self) -> None:
        self.apply_masks()

    def _scheduled(self, step: int) -> float:
        assert self.config.schedule is not None
        return self.config.schedule.sparsity_at(step, self.steps_per_epoch, self.config.sparsity)

    @torch.no_grad()
    def achieved(self) -> tuple[float, dict[str, float]]:
        """Measured sparsity of the targeted weights: overall and per layer."""
        zeros = {name: int((w == 0).sum()) for name, w in self.weights.items()}
        total = sum(w.numel() for w in self.weights.values())
        per_layer = {name: zeros[name] / w.numel() for name, w in self.weights.items()}
        return sum(zeros.values()) / total, per_layer


def _smallest(magnitudes: torch.Tensor, fraction: float) -> torch.Tensor:
    """Boolean mask of exactly round(fraction * n) smallest entries."""
    count = round(fraction * magnitudes.numel())
    pruned = torch.zeros_like(magnitudes, dtype=torch.bool)
    if count > 0:
        pruned[torch.topk(magnitudes, count, largest=False).indices] = True
    return pruned


def apply_prune(
    model: nn.Module, config: PrunePass, context: PassContext
) -> tuple[nn.Module, dict]:
    """Run a prune pass: select layers, prune (one-shot or scheduled), fine-tune, verify."""
    layers = resolve_targets(config.targets, config.ignore, module_layers(model), "prune")
    pruner = MagnitudePruner(model, [layer.name for layer in layers], config)
    if config.schedule is None:
        pruner.set_sparsity(config.sparsity)
    training = None
    if config.trains:
        recipe = context.recipe
        if "train" not in context.data:
            raise ModelError("prune: fine-tuning needs a 'train' split from data.source")
        assert recipe.train is not None and recipe.data is not None  # checked with the recipe
        training = train(
            model,
            recipe.train,
            context.data["train"],
            recipe.model.inputs,
            recipe.data.batch_size,
            hooks=[pruner],
            reporter=context.reporter,
            description="pruning + fine-tuning" if config.schedule else "fine-tuning",
        )
    achieved, per_layer = pruner.achieved()
    check_achieved(config, achieved)
    return model, {
        "method": config.method,
        "scope": config.scope,
        "schedule": config.schedule.kind if config.schedule else "one-shot",
        "target_sparsity": config.sparsity,
        "achieved_sparsity": round(achieved, 6),
        "mask_updates": pruner.updates,
        "layers": {name: round(value, 6) for name, value in per_layer.items()},
        "training": training,
    }
