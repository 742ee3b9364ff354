"""A recipe's data written to another directory: relative file references rewritten so that
they still name the same files from there."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from compress.recipe import BUILTIN_METRICS, Recipe, TextSplits, referenced_file


def recipe_data(recipe: Recipe) -> dict:
    """The recipe as its YAML parsed (what the user wrote), else as data."""
    written = recipe.as_written
    if written is not None:
        return copy.deepcopy(written)
    return recipe.model_dump(mode="json", exclude_unset=True)


def relocated(data: dict, recipe: Recipe, directory: Path) -> dict:
    """`data` (of `recipe`) with its relative file references made relative to `directory`."""
    moved = copy.deepcopy(data)
    locations: list[tuple[Any, ...]] = [
        ("model", "source"),
        ("model", "weights"),
        ("data", "source"),
        ("evaluate", "metric"),
        *(("data", "text", split) for split in TextSplits.model_fields),
    ]
    for index, config in enumerate(recipe.passes):
        locations += [("passes", index, *loc) for loc, _ in config.references()]
    for location in locations:
        parent, key = _parent(moved, location)
        if parent is not None and isinstance(parent.get(key), str):
            parent[key] = _moved(parent[key], recipe.base_dir, directory)
    return moved


def _parent(data: Any, location: tuple[Any, ...]) -> tuple[dict | None, Any]:
    for part in location[:-1]:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None, None
    return (data, location[-1]) if isinstance(data, dict) else (None, None)


def _moved(reference: str, base: Path, directory: Path) -> str:
    file = referenced_file(reference)
    if file is None or Path(file).is_absolute() or reference in BUILTIN_METRICS:
        return reference
    target, here = (base / file).resolve(), directory.resolve()
    # relative while the two share a folder below the root, else absolute
    shared = Path(os.path.commonpath([target, here]))
    moved = os.path.relpath(target, here) if shared != Path(shared.anchor) else str(target)
    return moved + reference[len(file) :]
