"""Datasets from a recipe's `data.source`: named splits of numpy inputs and targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compress.errors import ModelError
from compress.recipe import Recipe
from compress.sources import call_reference

KNOWN_SPLITS = ("train", "val", "calibration")


@dataclass(frozen=True)
class Split:
    """One split: a list of input arrays (one per model input) and optional targets."""

    inputs: list[np.ndarray]
    targets: np.ndarray | None

    def __len__(self) -> int:
        return len(self.inputs[0])

    def take(self, count: int) -> Split:
        """The first `count` samples."""
        targets = None if self.targets is None else self.targets[:count]
        return Split([x[:count] for x in self.inputs], targets)


Splits = dict[str, Split]


def load_data(recipe: Recipe) -> Splits:
    """Call the recipe's data source and validate what it returns."""
    if recipe.data is None:
        return {}
    raw = call_reference(recipe.data.source, recipe.base_dir)
    if not isinstance(raw, dict) or not raw:
        raise ModelError(f"{recipe.data.source} must return a dict of splits {KNOWN_SPLITS}")
    unknown = set(raw) - set(KNOWN_SPLITS)
    if unknown:
        raise ModelError(f"{recipe.data.source}: unknown split(s) {sorted(unknown)}")
    return {name: _as_split(name, value, recipe.data.source) for name, value in raw.items()}


def _as_split(name: str, value: Any, source: str) -> Split:
    if isinstance(value, tuple) and len(value) == 2:
        inputs, targets = value
    else:
        inputs, targets = value, None
    arrays = [np.asarray(x) for x in (inputs if isinstance(inputs, list | tuple) else [inputs])]
    lengths = {len(x) for x in arrays}
    if targets is not None:
        targets = np.asarray(targets)
        lengths.add(len(targets))
    if len(lengths) != 1:
        raise ModelError(f"{source}: split {name!r} has inputs/targets of different lengths")
    if not lengths or next(iter(lengths)) == 0:
        raise ModelError(f"{source}: split {name!r} is empty")
    return Split(arrays, targets)
