"""Per-layer levels from sensitivity curves: the levels whose summed predicted drop is least
while the layers, weighted by size, reach the overall target (Distiller's and FastNAS's
additive model of per-layer damage). Layers without a curve, and pinned ones, keep theirs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from compress.analysis.schema import LayerSensitivity

#: Levels are chosen on this grid; no layer goes beyond the highest level scanned.
STEP = 0.01


def predicted_drop(row: LayerSensitivity, level: float) -> float:
    """The drop a layer is predicted to cause at `level`: its measured points joined by straight
    lines from (0, 0), made non-decreasing (noise where a level helps is not believed)."""
    levels = [0.0] + [p.level for p in row.points]
    drops = np.maximum.accumulate([0.0] + [max(0.0, p.drop) for p in row.points])
    return float(np.interp(level, levels, drops))


def allocate(
    rows: Sequence[LayerSensitivity],
    target: float,
    fixed: Mapping[str, tuple[int, float]] = {},
) -> dict[str, float]:
    """Levels for `rows` so that, with the `fixed` layers ({name: (size, level)}), the
    size-weighted mean level is `target`. Greedy on the cheapest predicted drop per weight
    removed, looking ahead to every higher level (curves are not convex: a flat stretch after
    a step is found)."""
    grid = {row.name: np.arange(0.0, row.points[-1].level + 1e-9, STEP) for row in rows}
    cost = {row.name: [predicted_drop(row, level) for level in grid[row.name]] for row in rows}
    size = {row.name: row.size for row in rows}
    total = sum(size.values()) + sum(s for s, _ in fixed.values())
    needed = target * total - sum(s * level for s, level in fixed.values())
    position = dict.fromkeys(size, 0)
    removed = 0.0
    while removed < needed - 1e-9:
        best = None
        for name in size:
            here = position[name]
            for ahead in range(here + 1, len(grid[name])):
                weights = (grid[name][ahead] - grid[name][here]) * size[name]
                price = (cost[name][ahead] - cost[name][here]) / weights
                if best is None or price < best[0] - 1e-15:
                    best = (price, name, ahead)
        if best is None:  # every layer at its highest scanned level
            break
        _, name, ahead = best
        gained = (grid[name][ahead] - grid[name][position[name]]) * size[name]
        if removed + gained > needed:  # the last move only as far as the target needs
            level = grid[name][position[name]] + (needed - removed) / size[name]
            return {**_levels(grid, position), name: round(float(level), 4)}
        removed += gained
        position[name] = ahead
    return _levels(grid, position)


def _levels(grid: Mapping[str, np.ndarray], position: Mapping[str, int]) -> dict[str, float]:
    return {name: round(float(grid[name][index]), 4) for name, index in position.items()}
