"""`compress validate` and `compress plan`: resolve the model and each pass's targets, no work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compress.backends import load_model
from compress.passes import PLANNERS
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
    passes = [
        {"type": config.type, **PLANNERS[config.type](config, layers)} for config in recipe.passes
    ]
    return Plan(framework=backend.name, params=sum(layer.params for layer in layers), passes=passes)
