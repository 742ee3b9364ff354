"""`compress validate`'s dry run: what `compress apply` would hit in its first seconds, without
training or exporting. The data is loaded and its shapes checked against `model.inputs`, the
model runs once on the declared inputs and once on a batch of the data, and the recipe's loss
takes that batch's outputs and targets. Each failure is a RecipeError at the recipe line to
change (exit 2)."""

from __future__ import annotations

from typing import Any

import numpy as np

from compress.backends.base import Backend
from compress.backends.native_logs import quiet_library
from compress.data import Split, Splits, load_data
from compress.errors import CompressError, RecipeError, first_line
from compress.generated_inputs import generated_array
from compress.generation_step import generation_transforms
from compress.measure.macs import macs_inputs
from compress.recipe import InputSpec, Recipe

#: Size of the dynamic dimensions of the made-up inputs (as the exporters use).
DYNAMIC_DIM = 2
#: Samples of each split the model runs on.
BATCH = 2


def dry_run(recipe: Recipe, backend: Backend, model: Any) -> Splits:
    """Check that the data, the model and the loss fit together; returns the data."""
    data = _loaded(recipe)
    check_data_shapes(recipe, data)
    macs_inputs(recipe, data)  # every dynamic dimension of the timed inputs has a size
    check_runs(recipe, backend, model)
    generation_transforms(recipe)  # every ONNX-stage pass applies to a generation decoder
    for name, split in data.items():
        outputs = _forward(recipe, backend, model, split.take(BATCH).inputs, f"split {name!r}")
        if name == "train" and recipe.train is not None and split.targets is not None:
            _check_loss(recipe, backend, model, outputs, split.targets[:BATCH])
    return data


def _loaded(recipe: Recipe) -> Splits:
    try:
        return load_data(recipe)
    except RecipeError:
        raise  # already at its recipe line (data.text's split)
    except CompressError as exc:
        raise recipe.error_at(("data", "source"), str(exc)) from None


def check_data_shapes(recipe: Recipe, data: Splits) -> None:
    """Every split's input arrays fit `model.inputs` (`compress apply` checks this too)."""
    for name, split in data.items():
        _check_split(recipe, name, split)


def _check_split(recipe: Recipe, name: str, split: Split) -> None:
    """Each input array of a split has the rank and the fixed sizes its model.inputs entry
    declares (the first axis, the samples, excepted)."""
    specs = recipe.model.inputs
    if len(split.inputs) != len(specs):
        raise recipe.error_at(
            ("model", "inputs"),
            f"data.source's split {name!r} gives {len(split.inputs)} input array(s), the "
            f"recipe declares {len(specs)} model input(s)",
        )
    for index, (spec, array) in enumerate(zip(specs, split.inputs, strict=True)):
        fits = len(array.shape) == len(spec.shape) and all(
            not isinstance(dim, int) or dim <= 0 or dim == size
            for dim, size in zip(spec.shape[1:], array.shape[1:], strict=True)
        )
        if not fits:
            raise recipe.error_at(
                ("model", "inputs", index, "shape"),
                f"data.source's split {name!r} holds {spec.name!r} arrays of shape "
                f"{list(array.shape)}, which do not fit the declared shape {_shown(spec)}",
            )


def check_runs(recipe: Recipe, backend: Backend, model: Any) -> None:
    """The model runs on inputs of the declared shapes (`compress apply` checks this before
    exporting, so a wrong shape is named as `model.inputs`, not as an exporter's failure)."""
    _forward(recipe, backend, model, _made_up_inputs(recipe), "the declared inputs")


def _made_up_inputs(recipe: Recipe) -> list[np.ndarray]:
    """Inputs of the declared shapes: dynamic sizes from measure.latency.dims, else small."""
    latency = recipe.measure.latency
    dims = latency.dims if latency is not None else {}
    rng = np.random.default_rng(0)
    arrays = []
    for spec in recipe.model.inputs:
        shape = [
            dim if isinstance(dim, int) and dim > 0 else dims.get(str(dim), DYNAMIC_DIM)
            for dim in spec.shape
        ]
        arrays.append(generated_array(spec, shape, rng))
    return arrays


def _forward(
    recipe: Recipe, backend: Backend, model: Any, inputs: list[np.ndarray], what: str
) -> list[np.ndarray]:
    try:
        with quiet_library():
            return backend.predict(model, inputs)
    except Exception as exc:
        loc = ("model", "inputs", 0, "shape") if len(inputs) == 1 else ("model", "inputs")
        shapes = ", ".join(str(list(array.shape)) for array in inputs)
        raise recipe.error_at(
            loc,
            f"the model does not run on {what} (shape {shapes}): {first_line(exc)}",
        ) from None


def _check_loss(
    recipe: Recipe, backend: Backend, model: Any, outputs: list[np.ndarray], targets: np.ndarray
) -> None:
    assert recipe.train is not None
    try:
        backend.check_loss(model, recipe.train.loss, outputs, targets)
    except CompressError as exc:
        raise recipe.error_at(("train", "loss"), str(exc)) from None


def _shown(spec: InputSpec) -> str:
    return "[" + ", ".join(str(dim) for dim in spec.shape) + "]"
