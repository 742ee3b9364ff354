"""Per-layer levels from sensitivity curves: the levels whose summed predicted drop is least
while the layers, weighted by size, reach the overall target (Distiller's and FastNAS's
additive model of per-layer damage). Solved by Lagrangian relaxation: for a price per weight
removed, each layer takes the level that minimises its drop minus the price of what it
removes; the price is bisected until the target is met, and the overshoot of the last step is
given back where that saves the most predicted drop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from compress.analysis.schema import LayerSensitivity

#: Levels are chosen on this grid; no layer goes beyond the highest level scanned.
STEP = 0.01
_PRICE_STEPS = 60


def predicted_drop(row: LayerSensitivity, level: float) -> float:
    """The drop a layer is predicted to cause at `level`: its measured points joined by straight
    lines from (0, 0), made non-decreasing (noise where a level helps is not believed)."""
    levels = [0.0] + [p.level for p in row.points]
    drops = np.maximum.accumulate([0.0] + [max(0.0, p.drop) for p in row.points])
    return float(np.interp(level, levels, drops))


def allocate(
    rows: Sequence[LayerSensitivity],
    target: float,
    fixed: Mapping[str, tuple[int, float]] | None = None,
) -> dict[str, float]:
    """Levels for `rows` so that, with the `fixed` layers ({name: (size, level)}), the
    size-weighted mean level is `target` (or as close as the highest scanned levels allow)."""
    fixed = fixed or {}
    rows = [row for row in rows if row.points]
    size = {row.name: row.size for row in rows}
    total = sum(size.values()) + sum(s for s, _ in fixed.values())
    needed = target * total - sum(s * level for s, level in fixed.values())
    grid = {row.name: np.arange(0.0, row.points[-1].level + 1e-9, STEP) for row in rows}
    cost = {row.name: np.array([predicted_drop(row, x) for x in grid[row.name]]) for row in rows}

    def choose(price: float) -> dict[str, float]:
        """Each layer's best level at `price` per weight (ties: the higher level)."""
        chosen = {}
        for name in size:
            value = cost[name] - price * size[name] * grid[name]
            chosen[name] = float(grid[name][len(value) - 1 - np.argmin(value[::-1])])
        return chosen

    def removed(levels: Mapping[str, float]) -> float:
        return sum(size[name] * level for name, level in levels.items())

    low, high = 0.0, 1.0
    while removed(choose(high)) < needed - 1e-9 and high < 1e12:
        high *= 4
    for _ in range(_PRICE_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if removed(choose(middle)) < needed - 1e-9 else (low, middle)
    levels = choose(high)
    excess = removed(levels) - needed
    if excess > 0:
        levels = _give_back(rows, levels, excess)
    return {name: round(level, 4) for name, level in levels.items()}


def _give_back(
    rows: Sequence[LayerSensitivity], levels: dict[str, float], excess: float
) -> dict[str, float]:
    """Lower the layers whose predicted drop falls most per weight given back, until the
    `excess` weights removed beyond the target are back."""
    levels = dict(levels)
    for row in sorted(rows, key=lambda r: -_saving(r, levels[r.name], excess)):
        if excess <= 1e-9:
            break
        back = min(levels[row.name], excess / row.size)
        levels[row.name] -= back
        excess -= back * row.size
    return levels


def _saving(row: LayerSensitivity, level: float, excess: float) -> float:
    """Predicted drop saved per weight by lowering `row` by up to `excess` weights."""
    back = min(level, excess / row.size)
    if back <= 0:
        return -1.0
    return (predicted_drop(row, level) - predicted_drop(row, level - back)) / (back * row.size)
