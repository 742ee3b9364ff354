"""`compress validate` and `compress plan`: what a recipe will do, found without training.

`plan` counts parameters and MACs the way the report does, on exported ONNX files: the model
as loaded, then after each pass that changes its structure, which the plan makes on a copy
(a channel cut one-shot, a student loaded). Passes that change weights only list the weights
they zero; ONNX-stage passes list the nodes they will quantize (their `plan` role).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.backends import load_model
from compress.backends.base import Backend, PassContext
from compress.data import Splits, load_data
from compress.dry_run import dry_run
from compress.measure.macs import macs_inputs, measure_macs
from compress.measure.weights import summarize
from compress.passes import PassConfig, role_for
from compress.passes.registry import ONNX, PLAN
from compress.passes.targets import TargetError
from compress.progress import Reporter
from compress.recipe import Recipe
from compress.references import resolve_references


@dataclass(frozen=True)
class Validated:
    """What `compress validate` found: the framework, its parameter count and the data."""

    framework: str
    framework_params: int
    splits: dict[str, int]


@dataclass(frozen=True)
class Plan:
    framework: str
    params: int  # as the report counts them: the weights of the exported ONNX file
    macs: int
    passes: list[dict[str, Any]]


def validate(recipe: Recipe) -> Validated:
    """The dry run of `compress apply`'s first seconds (compress/dry_run.py)."""
    resolve_references(recipe)
    backend, model = load_model(recipe)
    data = dry_run(recipe, backend, model)
    layers = backend.layers(model)
    for index, config in enumerate(recipe.passes):
        _planned(recipe, index, config, layers)
    splits = {name: len(split) for name, split in data.items()}
    return Validated(backend.name, backend.params(model), splits)


def plan(recipe: Recipe) -> Plan:
    """Load the model and say what each pass will do to it, counted as the report counts."""
    resolve_references(recipe)
    backend, model = load_model(recipe)
    data = load_data(recipe)
    context = PassContext(recipe=recipe, data=data, reporter=Reporter(False), backend=backend)
    with tempfile.TemporaryDirectory(prefix="compress-plan-") as folder:
        counter = _Counter(backend, recipe, data, Path(folder))
        first = current = counter.count(model)
        passes = []
        for index, config in enumerate(recipe.passes):
            step = _planned(recipe, index, config, backend.layers(model))
            after = current
            if config.stage == ONNX:
                planner = role_for(PLAN, config, ONNX)
                step.update(planner(current.path, config, context) if planner else {})
            else:
                changed = config.planned_model(backend, model, context)
                if changed is not None:
                    new_model, info = changed
                    step.update(_structure(config, info, backend, model, new_model))
                    if new_model is not model:
                        model, after = new_model, counter.count(new_model)
            step.update(
                params_before=current.params,
                params_after=after.params,
                macs_before=current.macs,
                macs_after=after.macs,
            )
            passes.append(step)
            current = after
    return Plan(framework=backend.name, params=first.params, macs=first.macs, passes=passes)


def _planned(recipe: Recipe, index: int, config: PassConfig, layers: list) -> dict[str, Any]:
    """The pass's own plan of the model as it stands (raises on unmatched targets)."""
    try:
        return {"type": config.type, "variant": config.variant, **config.plan(layers)}
    except TargetError as exc:
        raise recipe.error_at(("passes", index, *exc.loc), exc.message) from None


def _structure(
    config: PassConfig, info: dict, backend: Backend, before: Any, after: Any
) -> dict[str, Any]:
    """What a structural change did: the pass's own counts (channel groups before/after,
    teacher and student sizes) and every layer whose weights changed."""
    kept = ("groups", "left_whole", "teacher_params", "student_params")
    found: dict[str, Any] = {key: info[key] for key in kept if key in info}
    if after is before:
        return found
    new = {layer.name: layer.weights for layer in backend.layers(after)}
    rows = [
        {"name": layer.name, "kind": layer.kind, "weights": layer.weights, "after": new[layer.name]}
        for layer in backend.layers(before)
        if layer.name in new and new[layer.name] != layer.weights
    ]
    return {**found, "resized": rows}


@dataclass(frozen=True)
class _Counted:
    path: Path
    params: int
    macs: int


class _Counter:
    """Exports a model into the plan's folder and counts its parameters and MACs there, with
    the report's own functions and inputs."""

    def __init__(self, backend: Backend, recipe: Recipe, data: Splits, folder: Path) -> None:
        self.backend, self.recipe, self.folder = backend, recipe, folder
        self.inputs = macs_inputs(recipe, data)
        self.exports = 0

    def count(self, model: Any) -> _Counted:
        self.exports += 1
        path = self.folder / f"model.{self.exports}.onnx"
        self.backend.export_onnx(model, self.recipe, path, exporter="dynamo")
        macs = measure_macs({"model": path}, self.inputs)["model"]
        return _Counted(path, summarize(path).params, macs)
