"""Pruning masks in numpy, shared by every backend so that all frameworks prune alike.

A mask is a boolean array shaped like the weight: True keeps the weight, False zeroes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compress.errors import ModelError
from compress.passes.prune import PrunePass


def smallest(magnitudes: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean array marking exactly round(fraction * n) smallest entries of a flat array."""
    count = round(fraction * magnitudes.size)
    pruned = np.zeros(magnitudes.size, dtype=bool)
    if count > 0:
        pruned[np.argpartition(magnitudes, count - 1)[:count]] = True
    return pruned


def magnitude_masks(
    weights: Mapping[str, np.ndarray], sparsity: float | Mapping[str, float], scope: str
) -> dict[str, np.ndarray]:
    """Masks zeroing the smallest |w|: per layer (at one level, or at each layer's own), or
    with one threshold over all layers."""
    if scope == "global":
        flat = np.concatenate([np.abs(w).ravel() for w in weights.values()])
        pruned = smallest(flat, sparsity)
        masks, offset = {}, 0
        for name, weight in weights.items():
            masks[name] = ~pruned[offset : offset + weight.size].reshape(weight.shape)
            offset += weight.size
        return masks
    levels = sparsity if isinstance(sparsity, Mapping) else dict.fromkeys(weights, sparsity)
    return {
        name: ~smallest(np.abs(weight).ravel(), levels[name]).reshape(weight.shape)
        for name, weight in weights.items()
    }


def n_m_mask(weight: np.ndarray, n: int, m: int, axis: int) -> np.ndarray:
    """Keep the n largest |w| of every m consecutive weights along `axis` (input channels)."""
    moved = np.moveaxis(np.abs(weight), axis, -1)
    groups = moved.reshape(-1, m)
    keep = np.argsort(groups, axis=1, kind="stable")[:, m - n :]
    mask = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(mask, keep, True, axis=1)
    return np.moveaxis(mask.reshape(moved.shape), -1, axis)


def check_n_m_fits(
    config: PrunePass, shapes: Mapping[str, tuple[int, ...]], axis: Mapping[str, int]
) -> None:
    """n:m groups run along the input channels, whose count must be a multiple of m."""
    if config.method != "n:m":
        return
    for name, shape in shapes.items():
        channels = shape[axis[name]]
        if channels % config.m:
            raise ModelError(
                f"prune: layer {name!r} has {channels} input channel(s), not a multiple of "
                f"{config.m}: {config.n}:{config.m} pruning cannot take it (add it to ignore)"
            )


def compute_masks(
    config: PrunePass, weights: Mapping[str, np.ndarray], sparsity: float, axis: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """The masks a prune pass asks for when its schedule stands at `sparsity` (each layer at
    its own level in proportion; n:m ignores the value)."""
    if config.method == "n:m":
        return {name: n_m_mask(w, config.n, config.m, axis[name]) for name, w in weights.items()}
    if config.scope == "global":
        return magnitude_masks(weights, sparsity, config.scope)
    levels = {name: config.level_at(name, sparsity) for name in weights}
    return magnitude_masks(weights, levels, config.scope)


class SparsityStepper:
    """When to recompute masks during training, and at which sparsity (framework-neutral)."""

    def __init__(self, config: PrunePass) -> None:
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


def achieved_sparsity(weights: Mapping[str, np.ndarray]) -> tuple[float, dict[str, float]]:
    """Measured fraction of zeros: over all the given weights, and per weight."""
    zeros = {name: int(np.count_nonzero(w == 0)) for name, w in weights.items()}
    total = sum(w.size for w in weights.values())
    per_layer = {name: zeros[name] / w.size for name, w in weights.items()}
    return sum(zeros.values()) / max(1, total), per_layer
