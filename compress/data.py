"""Datasets from a recipe's `data.source`: named splits of numpy inputs and targets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from compress.errors import ModelError, RecipeError
from compress.recipe import Recipe
from compress.sources import call_reference
from compress.text_data import is_text, text_windows, tokenizer_for, windows, with_calibration

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
    """The recipe's splits: data.text's windows, or what data.source returns, validated (a
    split of strings becomes token windows, as text files do)."""
    if recipe.data is None:
        return {}
    if recipe.data.text is not None:
        return {name: _windows_split(w) for name, w in text_windows(recipe).items()}
    source = recipe.data.source
    assert source is not None  # DataSpec holds one of them
    raw = call_reference(source, recipe.base_dir)
    if not isinstance(raw, dict) or not raw:
        raise ModelError(f"{source} must return a dict of splits {KNOWN_SPLITS}")
    unknown = set(raw) - set(KNOWN_SPLITS)
    if unknown:
        raise ModelError(f"{source}: unknown split(s) {sorted(unknown)}")
    if any(is_text(value) for value in raw.values()):
        return _tokenized(recipe, raw, source)
    return {name: _as_split(name, value, source) for name, value in raw.items()}


def _windows_split(windows: np.ndarray) -> Split:
    """Token windows as a split: each window is its own target (next-token prediction)."""
    return Split([windows], windows)


def _tokenized(recipe: Recipe, raw: dict, source: str) -> Splits:
    """Splits of documents (strings) tokenized as one stream each and cut into windows; the
    calibration split defaults to train's windows."""
    tokenize = tokenizer_for(recipe)
    splits = {}
    for name, value in raw.items():
        if not is_text(value):
            raise ModelError(
                f"{source}: split {name!r} is not a list of strings, but another split is: "
                "give every split as text or every split as arrays"
            )
        try:
            cut = windows(tokenize(value), recipe.data.seq_len, f"{source}'s split {name!r}")
        except RecipeError as exc:
            raise recipe.error_at(("data", "source"), str(exc)) from None
        splits[name] = _windows_split(cut)
    return with_calibration(splits)


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
