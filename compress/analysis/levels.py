"""`allocation: sensitivity`: before a prune pass runs, scan its layers (groups) one at a time
on the exported baseline, then give each the level the allocation solver picks, so that the
overall level is the pass's `sparsity` with the least predicted drop. The pass then runs with
those levels written out (the report's recipe shows them)."""

from __future__ import annotations

from compress.analysis.allocation import allocate
from compress.analysis.channel_scan import scan_channels
from compress.analysis.subject import Subject
from compress.analysis.weight_scan import scan_weights, targeted_layers
from compress.errors import ModelError
from compress.passes.prune import SPARSITY_TOLERANCE, LayerLevels, PrunePass

#: The levels each layer is scanned at for allocation: fine where targets usually lie.
ALLOCATION_LEVELS = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


def allocated(subject: Subject, config: PrunePass) -> PrunePass:
    """The pass with one level per layer (group) from its sensitivity scan; layers its
    `overrides` name keep theirs, layers the scan cannot change keep the target."""
    if config.method == "channel":
        rows, _ = scan_channels(subject, config, ALLOCATION_LEVELS)
        sizes = {row.name: row.size for row in rows}
    else:
        layers = targeted_layers(subject, config)
        rows, _ = scan_weights(subject, layers, ALLOCATION_LEVELS)
        sizes = {layer.name: layer.weights for layer in subject.backend.layers(subject.model)}
        sizes = {name: sizes[name] for name in layers}
    scanned = {row.name for row in rows}
    levels_given = config.sparsity if isinstance(config.sparsity, LayerLevels) else None
    pinned = {
        name: levels_given.of(name)
        for name in sizes
        if levels_given is not None and levels_given.overridden(name)
    }
    fixed = {
        name: (size, pinned.get(name, config.target))
        for name, size in sizes.items()
        if name in pinned or name not in scanned
    }
    free = [row for row in rows if row.name not in pinned]
    levels = {**allocate(free, config.target, fixed), **pinned}
    total = sum(sizes.values())
    reached = sum(sizes[name] * levels.get(name, config.target) for name in sizes) / total
    if reached + SPARSITY_TOLERANCE < config.target:
        raise ModelError(
            f"prune: allocation cannot reach sparsity {config.target:.2%}: with every layer at "
            f"most {ALLOCATION_LEVELS[-1]:.0%} it reaches {reached:.2%}"
        )
    return config.model_copy(
        update={"sparsity": LayerLevels(default=config.target, overrides=levels)}
    )
