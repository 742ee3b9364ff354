"""Pruning masks in numpy, shared by every backend so that all frameworks prune alike.

A mask is a boolean array shaped like the weight: True keeps the weight, False zeroes it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


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


def achieved_sparsity(weights: Mapping[str, np.ndarray]) -> tuple[float, dict[str, float]]:
    """Measured fraction of zeros: over all the given weights, and per weight."""
    zeros = {name: int(np.count_nonzero(w == 0)) for name, w in weights.items()}
    total = sum(w.size for w in weights.values())
    per_layer = {name: zeros[name] / w.size for name, w in weights.items()}
    return sum(zeros.values()) / max(1, total), per_layer
