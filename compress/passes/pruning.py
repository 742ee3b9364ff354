"""The prune flow, once and framework-neutral (NNCF style): resolve the targets, compute the masks
on the schedule, re-apply them after every optimizer step, verify the sparsity, write the record.

A backend gives only primitives through a `PruneAdapter`: the targeted weights as numpy with
named axes, the masks written back (+0.0 where a mask is False), and its training with step hooks.
The pass handlers and the CompressionSession backends all drive the same `Pruner`, through the
lifecycle of compress/passes/lifecycle.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from compress.passes.masks import achieved_sparsity
from compress.passes.prune import (
    PruneBase,
    check_achieved,
    check_schedule_fits,
    expected_sparsity,
    prune_record,
)
from compress.passes.targets import LayerInfo

# Named weight axes: "in" (input channels, where n:m groups run), "out", and "k" (kernel).
# torch Linear/Conv: (out, in, *k); transformers Conv1D: (in, out); torch ConvTranspose:
# (in, out/groups, *k); Keras kernels: (*k, in, out); Keras ConvTranspose kernels: (*k, out, in).
IN = "in"
OUT = "out"
KERNEL = "k"


def layout(*axes: str, kernel_dims: int = 0, kernel_first: bool = False) -> tuple[str, ...]:
    """Named axes of a weight: the channel axes in order, kernel axes before or after them."""
    kernel = (KERNEL,) * kernel_dims
    return (*kernel, *axes) if kernel_first else (*axes, *kernel)


def input_axis(axes: Sequence[str]) -> int:
    """The input-channel axis of a weight with these named axes (n:m groups run along it)."""
    return list(axes).index(IN)


class SparsityStepper:
    """When to recompute masks during training, and at which sparsity (framework-neutral)."""

    def __init__(self, config: PruneBase) -> None:
        self.config = config
        self.steps_per_epoch = 1
        self.current = 0.0
        self.updates = 0

    def start(self, steps_per_epoch: int) -> float | None:
        """Sparsity to apply before the first step, or None to keep the current masks."""
        self.steps_per_epoch = steps_per_epoch
        if self.config.schedule is None:
            return None
        return self._record(self._scheduled(0))

    def after(self, step: int) -> float | None:
        """Sparsity to apply after optimizer step `step`, or None to re-apply the masks.

        Masks move every `frequency` steps while the schedule rises, and exactly on the step
        where it reaches its final value.
        """
        schedule = self.config.schedule
        if schedule is None:
            return None
        target = self._scheduled(step)
        due = step % schedule.update_every(self.steps_per_epoch) == 0
        if target != self.current and (due or target == self.config.level):
            return self._record(target)
        return None

    def record_one_shot(self) -> float:
        return self._record(self.config.level)

    def _record(self, sparsity: float) -> float:
        self.current = sparsity
        self.updates += 1
        return sparsity

    def _scheduled(self, step: int) -> float:
        assert self.config.schedule is not None
        return self.config.schedule.sparsity_at(step, self.steps_per_epoch, self.config.level)


class PruneAdapter(Protocol):
    """What a backend gives the pruner for the chosen weights."""

    def layouts(self) -> dict[str, tuple[str, ...]]:
        """Named axes of each weight (see `layout`)."""
        ...

    def read(self) -> dict[str, np.ndarray]:
        """The weights as numpy."""
        ...

    def set_masks(self, masks: Mapping[str, np.ndarray]) -> None:
        """Keep these masks (True keeps a weight) in the framework's form."""
        ...

    def apply_masks(self) -> None:
        """Write +0.0 where the kept masks are False (not w * 0, which leaves -0.0)."""
        ...


class Pruner:
    """Masks over the adapter's weights, moved on the neutral schedule: the pass lifecycle
    (compress/passes/lifecycle.py) that a backend's trainer, callback or session drives."""

    def __init__(self, config: PruneBase, adapter: PruneAdapter) -> None:
        self.config = config
        self.adapter = adapter
        self.stepper = SparsityStepper(config)
        self.axis = {name: input_axis(axes) for name, axes in adapter.layouts().items()}
        config.check_shapes({name: tuple(w.shape) for name, w in adapter.read().items()}, self.axis)

    def set_sparsity(self, sparsity: float) -> None:
        """Recompute the masks from the current weights and apply them."""
        masks = self.config.compute_masks(self.adapter.read(), sparsity, self.axis)
        self.adapter.set_masks(masks)
        self.adapter.apply_masks()

    def apply_masks(self) -> None:
        self.adapter.apply_masks()

    def initialize(self) -> None:
        """One-shot pruning applies its masks before any training."""
        if self.config.schedule is None:
            self.set_sparsity(self.stepper.record_one_shot())

    def on_start(self, steps_per_epoch: int, total_steps: int) -> None:
        check_schedule_fits(self.config, steps_per_epoch, total_steps)
        sparsity = self.stepper.start(steps_per_epoch)
        if sparsity is not None:
            self.set_sparsity(sparsity)

    def on_update(self, step: int) -> None:
        sparsity = self.stepper.after(step)
        if sparsity is None:
            self.apply_masks()
        else:
            self.set_sparsity(sparsity)

    def on_end(self) -> None:
        self.apply_masks()

    def achieved(self) -> tuple[float, dict[str, float]]:
        return achieved_sparsity(self.adapter.read())

    def finalize(self, training: dict | None) -> dict:
        """Apply the masks a last time, verify the sparsity reached, and return the record."""
        self.apply_masks()
        achieved, per_layer = self.achieved()
        sizes = {name: w.size for name, w in self.adapter.read().items()}
        expected = expected_sparsity(self.config, sizes)
        check_achieved(self.config, achieved, expected)
        updates = self.stepper.updates
        return prune_record(self.config, achieved, per_layer, updates, training, expected)


def select(config: PruneBase, layers: list[LayerInfo]) -> list[str]:
    """The names of the layers the pass targets (TargetError names the recipe field)."""
    return [layer.name for layer in config.chosen_layers(layers)]


def pruner_for(config: PruneBase, adapter: PruneAdapter) -> Pruner:
    """An initialized pruner: one-shot masks are applied at once."""
    pruner = Pruner(config, adapter)
    pruner.initialize()
    return pruner


def run_prune(config: PruneBase, adapter: PruneAdapter, train: Callable[[Pruner], dict]) -> dict:
    """The whole pass over the selected weights: prune (one-shot or scheduled), fine-tune with
    the pruner as the step hook when the pass trains, verify, record."""
    pruner = pruner_for(config, adapter)
    training = train(pruner) if config.trains else None
    return pruner.finalize(training)
