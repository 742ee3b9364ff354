"""`compress validate` and `compress plan`: resolve the model and each pass's targets, no work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compress.backends import load_model
from compress.passes.targets import TargetError
from compress.recipe import Recipe


@dataclass(frozen=True)
class Plan:
    framework: str
    params: int
    passes: list[dict[str, Any]]


def plan(recipe: Recipe) -> Plan:
    """Load the model and describe what each pass will touch (raises on unmatched targets)."""
    backend, model = load_model(recipe)
    layers = backend.layers(model)
    passes = []
    for index, config in enumerate(recipe.passes):
        try:
            passes.append({"type": config.type, **config.plan(layers)})
        except TargetError as exc:
            raise recipe.error_at(("passes", index, *exc.loc), exc.message) from None
    return Plan(framework=backend.name, params=sum(layer.params for layer in layers), passes=passes)
