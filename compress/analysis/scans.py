"""The sensitivity scans of each pass class, registered in the pass registry: `levels` (a prune
algorithm's layers or groups at several levels: what `compress analyze` shows and what
allocation and `compress tune` allocate from) and `scan` (any other per-node analysis).
A pass class with neither is listed by `compress analyze` as skipped, with its `no_scan`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import compress.units as units
from compress.analysis.channel_scan import scan_channels
from compress.analysis.node_scan import count_nodes, scan_nodes
from compress.analysis.schema import LayerSensitivity, PassAnalysis
from compress.analysis.subject import Subject
from compress.analysis.weight_scan import scan_weights, targeted_layers
from compress.metrics import drop_unit
from compress.onnx.macs import macs_by_layer
from compress.passes import register_role
from compress.passes.prune import ChannelPrune, MagnitudePrune
from compress.passes.quantize import (
    POST_TRAINING_PASSES,
    PostTrainingQuantize,
)

LEVELS = "levels"
SCAN = "scan"


@dataclass
class LevelScan:
    """Each layer's (group's) measured drop at each level; `sizes` is what allocation spends
    per layer (weights, or the MACs a group controls)."""

    kind: str
    rows: list[LayerSensitivity]
    notes: list[str]
    sizes: dict[str, int]


def scan_magnitude(subject: Subject, config: MagnitudePrune, levels: Sequence[float]) -> LevelScan:
    """Each targeted layer's weights zeroed alone on the exported baseline."""
    layers = targeted_layers(subject, config)
    rows, missing = scan_weights(subject, layers, levels)
    notes = [f"{name}: no weight of this layer in the export" for name in missing]
    weights = {info.name: info.weights for info in subject.backend.layers(subject.model)}
    return LevelScan("weights", rows, notes, {name: weights[name] for name in layers})


def scan_channel_groups(
    subject: Subject, config: ChannelPrune, levels: Sequence[float]
) -> LevelScan:
    """Each channel group cut alone by the pass itself, weighed by the MACs it controls."""
    rows, notes = scan_channels(subject, config, levels)
    return LevelScan("channels", rows, notes, group_macs(subject, rows))


def group_macs(subject: Subject, rows: list[LayerSensitivity]) -> dict[str, int]:
    """What cutting each channel group saves, to weigh it by: the MACs of one sample of every
    layer it slices (its producers' outputs and its consumers' inputs), so that levels are
    traded for MACs, and the allocated pass removes as many MACs as the uniform one would
    (to first order). A group whose layers run no counted op weighs its channel count."""
    names = [spec.name for spec in subject.recipe.model.inputs]
    first = {name: x[:1] for name, x in zip(names, subject.scorer.inputs, strict=True)}
    macs = macs_by_layer(subject.baseline, first)
    return {row.name: sum(macs.get(layer, 0) for layer in row.layers) or row.size for row in rows}


def scan_quantized_nodes(
    subject: Subject, config: PostTrainingQuantize, levels: Sequence[float]
) -> PassAnalysis:
    """Each node quantized alone and reverted alone, ranked as the fallback ranks; nodes whose
    reversion gains nothing are not ranked, and none is when quantizing costs nothing."""
    quantizer, candidates = count_nodes(subject, config)
    nodes, full_drop = scan_nodes(subject, quantizer, candidates)
    notes = []
    if full_drop <= 0:
        evaluate = subject.recipe.evaluate
        drop = units.shown(drop_unit(evaluate.metric if evaluate else None), full_drop)
        notes.append(
            f"the fully quantized model loses nothing on these samples (drop {drop}): no node "
            "needs to go back to float, so none is ranked"
        )
    elif idle := [node.name for node in nodes if node.rank is None]:
        names = ", ".join(idle)
        notes.append(f"{len(idle)} node(s) gain nothing when reverted, not ranked: {names}")
    return PassAnalysis(
        index=0,
        type=config.type,
        kind="nodes",
        method=config.mode,
        nodes=nodes,
        full_drop=round(full_drop, 6),
        notes=notes,
        seconds=0.0,
    )


register_role(LEVELS, MagnitudePrune, scan_magnitude)
register_role(LEVELS, ChannelPrune, scan_channel_groups)
for _post_training in POST_TRAINING_PASSES:
    register_role(SCAN, _post_training, scan_quantized_nodes)
