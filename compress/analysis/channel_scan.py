"""Channel pruning, one coupled group at a time: the pass itself run one-shot on a copy of the
model with only that group at each level, the pruned framework model scored on val. (A cut
changes shapes, so the exported weights cannot stand in for it.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from compress.analysis.schema import LayerSensitivity, Point
from compress.analysis.subject import Subject
from compress.backends.base import PassContext
from compress.passes.channels import NothingToCut
from compress.passes.prune import ChannelPrune, LayerLevels
from compress.progress import Reporter

PROBE_LEVEL = 0.5


def one_shot(config: ChannelPrune, sparsity: float | LayerLevels) -> ChannelPrune:
    """The pass at `sparsity`, one-shot and without fine-tuning."""
    update = {"sparsity": sparsity, "schedule": None, "fine_tune": False, "allocation": "uniform"}
    return config.model_copy(update=update)


def _prune(subject: Subject, config: ChannelPrune) -> tuple[Any, dict]:
    """Run the pass on a copy of the model; returns (pruned model, record)."""
    quiet = PassContext(recipe=subject.recipe, data=subject.context.data, reporter=Reporter(False))
    return subject.backend.apply_pass(subject.backend.copy(subject.model), config, quiet)


def scan_channels(
    subject: Subject, config: ChannelPrune, levels: Sequence[float]
) -> tuple[list[LayerSensitivity], list[str]]:
    """Each group's drop when it alone is cut to each level; notes on levels that cut nothing
    of a group (too few channels) and on groups the pass leaves whole."""
    # the groups: those a one-shot cut at 50% finds (every group of 2+ channels loses one;
    # far higher, Torch-Pruning skips groups it would empty)
    _, probe = _prune(subject, one_shot(config, PROBE_LEVEL))
    notes = [f"{item['group']}: left whole ({item['why']})" for item in probe["left_whole"]]
    rows = []
    with subject.bar("scanning groups", len(probe["groups"]) * len(levels)) as advance:
        for group in probe["groups"]:
            name, points = group["name"], []
            for level in levels:
                trial = one_shot(config, LayerLevels(default=0.0, overrides={name: level}))
                advance(status=name)
                try:
                    pruned, _ = _prune(subject, trial)
                except NothingToCut:  # the level removes no whole channel of this group
                    continue
                outputs = subject.backend.predict(pruned, subject.scorer.inputs)[0]
                points.append(Point(level=level, drop=round(subject.scorer.drop(outputs), 6)))
            if len(points) < len(levels):
                notes.append(f"{name}: {len(levels) - len(points)} level(s) remove no channel")
            rows.append(
                LayerSensitivity(
                    name=name, size=group["before"], points=points, layers=group["layers"]
                )
            )
    return rows, notes
