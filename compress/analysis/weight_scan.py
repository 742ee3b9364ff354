"""Magnitude pruning, one layer at a time: the layer's smallest weights zeroed on the exported
baseline (one session, the weight fed per run), scored on val. The same masks as the pass."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from compress.analysis.schema import LayerSensitivity, Point
from compress.analysis.subject import Subject
from compress.onnx.weight_feeds import WeightFeeds, layer_weights
from compress.passes.masks import magnitude_masks
from compress.passes.prune import PruneBase
from compress.passes.pruning import select


def targeted_layers(subject: Subject, config: PruneBase) -> list[str]:
    """The layers the pass targets (names as the framework gives them)."""
    return select(config, subject.backend.layers(subject.model))


def scan_weights(
    subject: Subject, layers: Sequence[str], levels: Sequence[float]
) -> tuple[list[LayerSensitivity], list[str]]:
    """Each layer's drop when it alone is pruned to each level; and the targeted layers the
    export holds no weight of (a fused or renamed layer), which are not scanned."""
    found = layer_weights(subject.baseline, layers)
    missing = [name for name in layers if name not in found]
    tensors = [tensor for names in found.values() for tensor in names]
    feeds = WeightFeeds(subject.baseline, tensors, subject.scratch)
    with subject.bar("scanning layers", len(found) * len(levels)) as advance:
        rows = [
            _scan_layer(subject, feeds, layer, names, levels, advance)
            for layer, names in found.items()
        ]
    return rows, missing


def _scan_layer(
    subject: Subject,
    feeds: WeightFeeds,
    layer: str,
    tensors: Sequence[str],
    levels: Sequence[float],
    advance: Callable[..., None],
) -> LayerSensitivity:
    scorer = subject.scorer
    weights = {name: feeds.weights[name] for name in tensors}
    points = []
    for level in levels:
        masks = magnitude_masks(weights, level, "layer")
        changed = {name: np.where(masks[name], w, 0).astype(w.dtype) for name, w in weights.items()}
        outputs = feeds.predict(scorer.inputs, subject.batch, changed)
        points.append(Point(level=level, drop=round(scorer.drop(outputs), 6)))
        advance(status=layer)
    size = sum(w.size for w in weights.values())
    return LayerSensitivity(name=layer, size=size, points=points)
