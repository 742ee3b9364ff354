"""`allocation: sensitivity`: before a prune pass runs, scan its layers (groups) one at a time
on the exported baseline, then give each the level the allocation solver picks, so that the
overall level is the pass's `sparsity` with the least predicted drop. The pass then runs with
those levels written out (the report's recipe shows them). `compress tune` allocates the same
way for every overall level it tries."""

from __future__ import annotations

from compress.analysis.allocation import allocate, predicted_drop
from compress.analysis.scans import LEVELS
from compress.analysis.subject import Subject
from compress.errors import ModelError
from compress.passes import role_for
from compress.passes.prune import SPARSITY_TOLERANCE, LayerLevels, PruneBase

#: The levels each layer is scanned at for allocation: fine where targets usually lie.
ALLOCATION_LEVELS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


class Allocator:
    """One sensitivity scan of a prune pass's layers (groups), then levels for any overall
    target: layers the pass's `overrides` name keep theirs, layers the scan cannot change
    (no weight in the export) keep the target."""

    def __init__(self, subject: Subject, config: PruneBase) -> None:
        self.config = config
        scan = role_for(LEVELS, config)
        if scan is None:
            raise ModelError(f"{type(config).label()} has no sensitivity scan to allocate from")
        scanned = scan(subject, config, ALLOCATION_LEVELS)
        self.rows, self.sizes = scanned.rows, scanned.sizes
        given = config.sparsity if isinstance(config.sparsity, LayerLevels) else None
        self.pinned = {
            name: given.of(name)
            for name in self.sizes
            if given is not None and given.overridden(name)
        }
        scanned = {row.name for row in self.rows}
        self.unscanned = [name for name in self.sizes if name not in scanned]

    def levels(self, target: float) -> dict[str, float]:
        """Each layer's level for an overall `target` (unscanned layers stay at `target`)."""
        fixed = {
            name: (self.sizes[name], self.pinned.get(name, target))
            for name in self.sizes
            if name in self.pinned or name in self.unscanned
        }
        free = [  # weighed by what the allocation spends (weights, or a group's MACs)
            row.model_copy(update={"size": self.sizes[row.name]})
            for row in self.rows
            if row.name not in self.pinned
        ]
        return {**allocate(free, target, fixed), **self.pinned}

    def reached(self, levels: dict[str, float], target: float) -> float:
        """The overall level `levels` give (layers they leave out at `target`)."""
        total = sum(self.sizes.values())
        return sum(size * levels.get(name, target) for name, size in self.sizes.items()) / total

    def predicted(self, levels: dict[str, float]) -> float:
        """The drop the scan predicts for `levels` (the layers' drops added)."""
        return sum(predicted_drop(row, levels.get(row.name, 0.0)) for row in self.rows)

    def with_levels(self, target: float) -> PruneBase:
        """The pass with the levels for `target` written out; an error when the scanned levels
        cannot reach it."""
        levels = self.levels(target)
        reached = self.reached(levels, target)
        if reached + SPARSITY_TOLERANCE < target:
            raise ModelError(
                f"prune: allocation cannot reach sparsity {target:.2%}: with every layer at "
                f"its highest scanned level it reaches {reached:.2%}"
            )
        levels = {name: levels.get(name, target) for name in self.sizes}
        return self.config.model_copy(
            update={"sparsity": LayerLevels(default=target, overrides=levels)}
        )


def allocated(subject: Subject, config: PruneBase) -> PruneBase:
    """The pass with one level per layer (group) from its sensitivity scan."""
    return Allocator(subject, config).with_levels(config.target)
