"""The layer calls of a Keras model, read from its config (Keras 3 and tf-keras formats alike):
the graph that channel pruning traces is the one the pruned model is rebuilt from."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

Ref = tuple[str, int, int]  # (layer name, call index, output index): one tensor of the graph
#: The model input of a Sequential model built without an InputLayer.
SEQUENTIAL_INPUT: Ref = ("<input>", 0, 0)


@dataclass(frozen=True)
class Call:
    """One call of a layer inside the model: it reads `inputs` and writes (layer, node, 0)."""

    layer: str
    kind: str
    config: dict
    node: int
    inputs: list[Ref]

    @property
    def output(self) -> Ref:
        return (self.layer, self.node, 0)


def model_calls(config: dict, sequential: bool) -> tuple[list[Call], list[Ref], list[Ref]]:
    """(layer calls in topological order, model input tensors, model output tensors)."""
    if sequential:
        return _sequential_calls(config["layers"])
    calls = [
        Call(entry["name"], entry["class_name"], entry["config"], node, _refs(inbound))
        for entry in config["layers"]
        for node, inbound in enumerate(entry["inbound_nodes"])
    ]
    inputs = _tensors(config["input_layers"])
    return _topological(calls, inputs), inputs, _tensors(config["output_layers"])


def call_counts(calls: list[Call]) -> dict[str, int]:
    """How many times each layer is called (a shared layer more than once)."""
    counts: dict[str, int] = defaultdict(int)
    for call in calls:
        counts[call.layer] += 1
    return counts


def _sequential_calls(layers: list[dict]) -> tuple[list[Call], list[Ref], list[Ref]]:
    calls, previous = [], SEQUENTIAL_INPUT
    for entry in layers:
        name = entry["config"]["name"]
        if entry["class_name"] == "InputLayer":
            previous = (name, 0, 0)
            continue
        calls.append(Call(name, entry["class_name"], entry["config"], 0, [previous]))
        previous = (name, 0, 0)
    first = calls[0].inputs if calls else [previous]
    return calls, first, [previous]


def _tensors(value: list) -> list[Ref]:
    """`["x", 0, 0]` (Keras 3, one tensor) or `[["x", 0, 0], ...]` as refs."""
    if value and isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    return [(ref[0], int(ref[1]), int(ref[2])) for ref in value]


def _refs(node: Any) -> list[Ref]:
    """The tensors one serialized call reads: Keras 3 `keras_history` entries, or tf-keras
    `[name, node, tensor, kwargs]` lists."""
    if isinstance(node, dict):
        history = node.get("config", {}).get("keras_history") if "class_name" in node else None
        if history is not None:
            return [(history[0], int(history[1]), int(history[2]))]
        return [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list | tuple):
        if len(node) == 4 and isinstance(node[0], str) and isinstance(node[3], dict):
            return [(node[0], int(node[1]), int(node[2]))]
        return [ref for value in node for ref in _refs(value)]
    return []


def _topological(calls: list[Call], inputs: list[Ref]) -> list[Call]:
    """Calls ordered so that each comes after the calls whose outputs it reads (a config
    that never resolves is left to the rebuild, which fails with Keras' own message)."""
    done = {ref[:2] for ref in inputs}  # (layer, node): a call writes all its outputs at once
    ordered, pending = [], list(calls)
    while pending:
        ready = [call for call in pending if all(ref[:2] in done for ref in call.inputs)]
        if not ready:
            break
        for call in ready:
            pending.remove(call)
            ordered.append(call)
            done.add(call.output[:2])
    return ordered
