"""Speed-aware placement for static INT8: keep in float the kinds of nodes whose integer
kernels (with their quantize/dequantize steps) cost more than they save on this CPU.

Nodes are grouped by the work they do (regular and depthwise convolutions, matrix products,
element-wise adds and multiplies, activations...): a greedy search keeps one group at a time in
float while that makes the model measurably faster. Ops that only move quantized values
(reshapes, pooling maxima, ReLU) follow their neighbours and are not searched.

Each round times every remaining group's candidate against the current best in paired rounds
(`timing.Timing.compare`: thread CPU time with 1 thread, which another process cannot inflate).
A candidate counts as faster only when the 95% interval of its paired time ratio lies wholly
below 1 - MIN_GAIN and it won a clear majority of rounds (`timing.Rule`); the chosen one is then
timed again with fresh sessions and kept only if that confirms it. Among candidates that pass,
the fastest is chosen, and candidates whose intervals overlap the fastest's are taken in graph
order, so that indistinguishable gains do not make the choice depend on the noise. Whatever the
outcome, every trial is recorded with its figures and the reason for its verdict.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from compress.backends.onnx.quantize import Quantizer
from compress.backends.onnx.timing import Comparison, Rule, Timing

#: Ops that carry quantized values without rounding them again.
PASS_THROUGH = {
    "Relu", "Clip", "MaxPool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose", "Gather",
    "Concat", "Split", "Slice", "Pad", "Squeeze", "Unsqueeze", "Resize", "Expand", "Tile",
    "Identity", "Where", "ArgMax",
}  # fmt: skip
#: A candidate must be this much faster than the current placement (lower 95% bound), twice.
MIN_GAIN = 0.04
MAX_TRIALS = 16
KEPT = "kept in float"


@dataclass
class Placement:
    """What the search chose: nodes kept float per group, and the figures behind it."""

    path: Path  # the fastest file found
    method: str = ""
    rule: str = ""
    keep_float: set[str] = field(default_factory=set)
    kept: list[dict] = field(default_factory=list)
    trials: int = 0
    #: every timed candidate: round, group, figures, verdict (and its confirmation, if any)
    searched: list[dict] = field(default_factory=list)

    def record(self) -> dict:
        return {
            "kept_float_for_speed": self.kept,
            "placement_trials": self.trials,
            "placement_method": self.method,
            "placement_rule": f"keep a group in float when {self.rule}, twice",
            "placement_search": self.searched,
        }


@dataclass
class _Trial:
    name: str
    path: Path
    comparison: Comparison
    entry: dict


def node_groups(model: onnx.ModelProto, names: list[str]) -> dict[str, list[str]]:
    """The searched nodes of `names` by group: op type, with depthwise convolutions apart."""
    wanted = set(names)
    initializers = {t.name: t for t in model.graph.initializer}
    groups: dict[str, list[str]] = defaultdict(list)
    for node in model.graph.node:
        if node.name not in wanted or node.op_type in PASS_THROUGH:
            continue
        groups[_group(node, initializers)].append(node.name)
    return dict(groups)


def _group(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> str:
    if node.op_type != "Conv":
        return node.op_type
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    weight = initializers.get(node.input[1])
    if group > 1 and weight is not None and weight.dims[1] == 1:
        return "Conv (depthwise)"
    return "Conv"


def search(quantizer: Quantizer, full: Path, timing: Timing) -> Placement:
    """Greedy search from the fully quantized `full`: returns the fastest placement found (at
    most MAX_TRIALS quantized variants are timed)."""
    prepared = onnx.load(str(quantizer.prepared), load_external_data=False)
    groups = node_groups(prepared, quantizer.quantized_nodes(full))  # in graph order
    rule = timing.rule(MIN_GAIN)
    placement = Placement(path=full, method=timing.method, rule=rule.describe())
    remaining = dict(groups)
    round_ = 0
    while remaining and placement.trials < MAX_TRIALS:
        round_ += 1
        trials: list[_Trial] = []
        for name, nodes in remaining.items():
            if placement.trials >= MAX_TRIALS:
                break
            placement.trials += 1
            candidate = quantizer.scratch / f"placement-{placement.trials}.onnx"
            quantizer.write(candidate, placement.keep_float | set(nodes))
            comparison = timing.compare(candidate, placement.path)
            refusal = rule.refusal(comparison)
            entry = {
                "round": round_,
                "group": name,
                "nodes": len(nodes),
                **comparison.record(),
                "verdict": refusal or "faster",
            }
            placement.searched.append(entry)
            if refusal is None:
                trials.append(_Trial(name, candidate, comparison, entry))
        chosen = _confirmed(_in_order(trials), placement.path, timing, rule)
        if chosen is None:
            break
        placement.keep_float |= set(remaining.pop(chosen.name))
        placement.path = chosen.path
        confirmation = chosen.entry["confirmation"]
        placement.kept.append(
            {
                "group": chosen.name,
                "nodes": len(groups[chosen.name]),
                "speedup": round(1 / max(chosen.comparison.ratio, confirmation["ratio"]), 3),
                "round": round_,
                "ratio_95": chosen.entry["ratio_95"],
                "confirmation_ratio_95": confirmation["ratio_95"],
            }
        )
    return placement


def _in_order(trials: list[_Trial]) -> list[_Trial]:
    """Candidates that passed, in the order to try them: the fastest first, except that those
    whose interval overlaps the fastest's (indistinguishable from it) go in graph order."""
    if not trials:
        return []
    fastest = min(trials, key=lambda t: t.comparison.ratio)
    tied = [t for t in trials if t.comparison.low <= fastest.comparison.high]
    rest = sorted((t for t in trials if t not in tied), key=lambda t: t.comparison.ratio)
    return tied + rest


def _confirmed(trials: list[_Trial], reference: Path, timing: Timing, rule: Rule) -> _Trial | None:
    """The first of `trials` that a second comparison (fresh sessions) also finds faster; the
    others tried are marked unconfirmed, those after it left for the next round."""
    for trial in trials:
        again = timing.compare(trial.path, reference)
        refusal = rule.refusal(again)
        trial.entry["confirmation"] = again.record()
        if refusal is None:
            trial.entry["verdict"] = KEPT
            for other in trials:
                if other is not trial and other.entry["verdict"] == "faster":
                    other.entry["verdict"] = f"faster, but {trial.name} was kept first"
            return trial
        trial.entry["verdict"] = f"not confirmed: {refusal}"
    return None
