"""`allocation: sensitivity`: before a prune pass runs, scan its layers (groups) one at a time
on the exported baseline, then give each the level the allocation solver picks, so that the
overall level is the pass's `sparsity` with the least predicted drop. The pass then runs with
those levels written out (the report's recipe shows them). `compress tune` allocates the same
way for every overall level it tries."""

from __future__ import annotations

from compress.analysis.allocation import allocate, predicted_drop
from compress.analysis.channel_scan import scan_channels
from compress.analysis.schema import LayerSensitivity
from compress.analysis.subject import Subject
from compress.analysis.weight_scan import scan_weights, targeted_layers
from compress.backends.onnx.macs import macs_by_layer
from compress.errors import ModelError
from compress.passes.prune import SPARSITY_TOLERANCE, LayerLevels, PrunePass

#: The levels each layer is scanned at for allocation: fine where targets usually lie.
ALLOCATION_LEVELS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


class Allocator:
    """One sensitivity scan of a prune pass's layers (groups), then levels for any overall
    target: layers the pass's `overrides` name keep theirs, layers the scan cannot change
    (no weight in the export) keep the target."""

    def __init__(self, subject: Subject, config: PrunePass) -> None:
        self.config = config
        if config.method == "channel":
            self.rows, _ = scan_channels(subject, config, ALLOCATION_LEVELS)
            self.sizes = group_macs(subject, self.rows)
        else:
            layers = targeted_layers(subject, config)
            self.rows, _ = scan_weights(subject, layers, ALLOCATION_LEVELS)
            weights = {info.name: info.weights for info in subject.backend.layers(subject.model)}
            self.sizes = {name: weights[name] for name in layers}
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

    def with_levels(self, target: float) -> PrunePass:
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


def group_macs(subject: Subject, rows: list[LayerSensitivity]) -> dict[str, int]:
    """What cutting each channel group saves, to weigh it by: the MACs of one sample of every
    layer it slices (its producers' outputs and its consumers' inputs), so that levels are
    traded for MACs, and the allocated pass removes as many MACs as the uniform one would
    (to first order). A group whose layers run no counted op weighs its channel count."""
    names = [spec.name for spec in subject.recipe.model.inputs]
    first = {name: x[:1] for name, x in zip(names, subject.scorer.inputs, strict=True)}
    macs = macs_by_layer(subject.baseline, first)
    return {row.name: sum(macs.get(layer, 0) for layer in row.layers) or row.size for row in rows}


def allocated(subject: Subject, config: PrunePass) -> PrunePass:
    """The pass with one level per layer (group) from its sensitivity scan."""
    return Allocator(subject, config).with_levels(config.target)
