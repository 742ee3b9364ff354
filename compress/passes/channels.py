"""Channel pruning, the framework-neutral part: how many channels a group keeps, how channels
are ranked, the check that the masked and the physically pruned model agree, and the record.

A *group* is a set of coupled channels removed together: the output channels of the layers that
produce them (all members of a residual `Add` share one group), the matching slices of the norm
layers after them, and the input channels of every layer that reads them. Backends find the
groups (torch: Torch-Pruning's dependency graph; Keras: compress/backends/keras/channels.py) and
slice the weights; the counting, ranking and checking is done once, here, and the flow once in
compress/passes/channel_pruning.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from compress.comparison import max_abs_diff
from compress.errors import ModelError
from compress.passes.prune import SPARSITY_TOLERANCE, ChannelPrune, levels_record

#: Where the samples that masked and pruned models are compared on come from, the first split
#: with enough of them (generated inputs otherwise).
CHECK_SPLITS = ("val", "calibration", "train")
#: Masked and pruned model outputs may differ by this fraction of the largest output: removing a
#: zeroed channel changes only the order of float sums.
AGREEMENT_TOLERANCE = 1e-4


@dataclass
class ChannelGroup:
    """Coupled channels: `name` is the layer whose output channels define the group, `layers`
    every layer sliced with it, `size` the channels before and `removed` the indices taken out."""

    name: str
    layers: list[str]
    size: int
    removed: list[int] = field(default_factory=list)
    kind: str = "channels"  # channels | neurons | heads

    @property
    def kept(self) -> int:
        return self.size - len(self.removed)


def kept_count(size: int, sparsity: float, round_to: int | None = None) -> int:
    """Channels a group of `size` keeps at `sparsity`: the removed count is rounded down (as
    Torch-Pruning does), the kept count up to a multiple of `round_to`; at least one is kept."""
    keep = size - math.floor(size * sparsity + 1e-9)
    if round_to:
        keep = math.ceil(keep / round_to) * round_to
    return max(1, min(size, keep))


def channel_scores(slices: Sequence[np.ndarray], importance: str) -> np.ndarray:
    """One score per channel from the group's weight slices, each shaped (channels, ...):
    l1 sums |w|, l2 takes the root of the summed squares, bn_scale and taylor take |value|
    (the caller passes BN scales, or weight*gradient products). Each member is scaled to mean 1
    first, so no layer dominates the group by its weight scale alone."""
    total = None
    for values in slices:
        flat = np.abs(values.reshape(values.shape[0], -1).astype(np.float64))
        score = np.sqrt((flat**2).sum(axis=1)) if importance == "l2" else flat.sum(axis=1)
        mean = score.mean()
        score = score / mean if mean > 0 else score
        total = score if total is None else total + score
    if total is None:
        raise ValueError("a channel group needs at least one weight slice to rank")
    return total / len(slices)


def lowest(scores: np.ndarray, count: int) -> list[int]:
    """The indices of the `count` lowest scores, in ascending index order (stable on ties)."""
    if count <= 0:
        return []
    order = np.argsort(scores, kind="stable")[:count]
    return sorted(int(i) for i in order)


def choose_removed(
    scores: dict[str, np.ndarray],
    sparsity: float | Mapping[str, float],
    scope: str,
    round_to: int | None = None,
) -> dict[str, list[int]]:
    """The channels to remove from each group (by name): per group at `sparsity` (or at each
    group's own level, scope `layer`), or with one threshold over the groups' normalised
    scores (scope `global`), each group keeping at least one channel (a multiple of
    `round_to`)."""
    if scope != "global":
        levels = sparsity if isinstance(sparsity, Mapping) else dict.fromkeys(scores, sparsity)
        return {
            name: lowest(s, s.size - kept_count(s.size, levels[name], round_to))
            for name, s in scores.items()
        }
    assert not isinstance(sparsity, Mapping)  # the recipe refuses per-layer levels with global
    pooled = sorted(
        (float(value), name, int(index))
        for name, s in scores.items()
        for index, value in enumerate(s)
    )
    budget = math.floor(sum(s.size for s in scores.values()) * sparsity + 1e-9)
    floor = {name: min(s.size, max(1, round_to or 1)) for name, s in scores.items()}
    count = dict.fromkeys(scores, 0)
    for _, name, _ in pooled:
        if budget <= 0:
            break
        if scores[name].size - count[name] > floor[name]:
            count[name] += 1
            budget -= 1
    removed = {}
    for name, s in scores.items():
        keep = kept_count(s.size, count[name] / s.size, round_to)
        removed[name] = lowest(s, s.size - keep)
    return removed


def left_whole_note(left_whole: Sequence[dict]) -> str | None:
    """One note for the groups a pass left whole: the first three with why, then a count."""
    if not left_whole:
        return None
    shown = "; ".join(f"{item['group']}: {item['why']}" for item in left_whole[:3])
    more = len(left_whole) - 3
    rest = f"; and {more} more (the pass record's left_whole)" if more > 0 else ""
    return f"prune: {len(left_whole)} channel group(s) left whole ({shown}{rest})"


class NothingToCut(ModelError):
    """No targeted channel group can be cut at the level asked: a fact about the model and the
    level (a sensitivity scan records it), not a failure of the pass."""


def nothing_to_cut(left_whole: Sequence[dict]) -> NothingToCut:
    """The error when no targeted group can be cut, with every reason a group was kept."""
    reasons = "; ".join(f"{item['group']}: {item['why']}" for item in left_whole) or (
        "every group touches a layer that is not targeted or produces a model output"
    )
    return NothingToCut(
        f"prune: no channel group of the targeted layers can be removed ({reasons})"
    )


def achieved_fraction(groups: Sequence[ChannelGroup]) -> float:
    """The fraction of the pruned groups' channels removed."""
    size = sum(group.size for group in groups)
    return 0.0 if size == 0 else sum(len(group.removed) for group in groups) / size


def check_channels_removed(
    config: ChannelPrune, groups: Sequence[ChannelGroup], achieved: float
) -> None:
    """Fail when fewer channels went than `sparsity` asks, after the rounding a group's whole
    channels (and `round_to`) impose: per group with scope `layer`, over all with `global`."""
    total = sum(group.size for group in groups)
    if config.scope == "global":
        wanted = math.floor(total * config.target + 1e-9) if not config.round_to else 0
    else:
        wanted = sum(
            g.size - kept_count(g.size, config.level_of(g.name), config.round_to) for g in groups
        )
    if total and achieved * total + 1e-9 < wanted - SPARSITY_TOLERANCE * total:
        raise ModelError(
            f"prune: {achieved:.2%} of the targeted channels were removed, below the "
            f"{wanted / total:.2%} that the sparsity asks of these groups"
        )


def agreement(expected: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> tuple[float, float]:
    """(max abs difference, allowed difference) between the masked model's outputs and the
    pruned model's (NonFinite when either holds NaN or ±inf)."""
    diff, scale = max_abs_diff(expected, actual, ("the masked model's", "the pruned model's"))
    return diff, (0.0 if math.isinf(diff) else AGREEMENT_TOLERANCE * scale)


def check_agreement(
    expected: Sequence[np.ndarray], actual: Sequence[np.ndarray], what: str
) -> dict:
    """Fail, naming `what` (a group or the whole model), when the masked model's outputs and
    the pruned model's disagree; else the figures for the record."""
    diff, allowed = agreement(expected, actual)
    if not diff <= allowed:
        raise ModelError(
            f"prune: removing the channels of {what} changes the model's outputs (max abs "
            f"diff {diff:.3g} vs the masked model, allowed {allowed:.3g}): a coupling this "
            "tool does not handle; leave the layer out with `ignore:`"
        )
    return {"max_abs_diff": diff, "tolerance": allowed}


def channel_record(
    config: ChannelPrune,
    groups: Sequence[ChannelGroup],
    left_whole: Sequence[dict],
    verification: dict,
    params: tuple[int, int],
    mask_updates: int,
    training: dict | None,
    engine: str,
) -> dict:
    """What a channel prune pass did, the same keys for every backend. `layers` holds, like
    every prune record, the fraction removed per layer; `channels` the counts before/after."""
    achieved = achieved_fraction(groups)
    check_channels_removed(config, groups, achieved)
    layers = {g.name: len(g.removed) / g.size for g in groups if g.size}
    total = sum(g.size for g in groups)
    asked = sum(config.level_of(g.name) * g.size for g in groups) / total if total else 0.0
    return {
        "method": "channel",
        "scope": config.scope,
        "schedule": config.schedule.kind if config.schedule else "one-shot",
        "target_sparsity": round(asked if config.per_layer else config.target, 6),
        "achieved_sparsity": round(achieved, 6),
        "mask_updates": mask_updates,
        "layers": {name: round(value, 6) for name, value in layers.items()},
        "training": training,
        "importance": config.ranking,
        "round_to": config.round_to,
        "engine": engine,
        "channels": {g.name: [g.size, g.kept] for g in groups},
        "groups": [
            {"name": g.name, "kind": g.kind, "layers": g.layers, "before": g.size, "after": g.kept}
            for g in groups
        ],
        "left_whole": list(left_whole),
        "verification": verification,
        "params_before": params[0],
        "params_after": params[1],
        **levels_record(config, [g.name for g in groups]),
    }
