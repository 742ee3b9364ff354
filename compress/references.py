"""The callables a recipe names ("file.py:fn", "pkg.module:fn"), resolved before any work, so
a missing file or function is a recipe error at its line, with what the file does define."""

from __future__ import annotations

from compress.errors import ModelError
from compress.recipe import BUILTIN_METRICS, Recipe
from compress.sources import load_callable

Location = tuple[str | int, ...]


def callable_references(recipe: Recipe) -> list[tuple[Location, str]]:
    """(recipe location, reference) of every callable the recipe names: the model builder, the
    data source, an evaluate function and the builders its passes name (teachers, students)."""
    found: list[tuple[Location, str | None]] = [
        (("model", "source"), recipe.model.source),
        (("data", "source"), recipe.data.source if recipe.data else None),
    ]
    if recipe.evaluate and recipe.evaluate.metric not in BUILTIN_METRICS:
        found.append((("evaluate", "metric"), recipe.evaluate.metric))
    for index, config in enumerate(recipe.passes):
        found += [(("passes", index, *loc), ref) for loc, ref in config.references()]
    return [(loc, ref) for loc, ref in found if ref and _is_callable_reference(ref)]


def resolve_references(recipe: Recipe, model: bool = True) -> None:
    """Import every callable the recipe names (the model builder too unless `model` is False:
    a model object was given); the first that cannot be found is a RecipeError at its recipe
    line (exit 2)."""
    for loc, reference in callable_references(recipe):
        if loc == ("model", "source") and not model:
            continue
        try:
            load_callable(reference, recipe.base_dir)
        except ModelError as exc:
            raise recipe.error_at(loc, f"{reference}: {exc}") from None


def _is_callable_reference(reference: str) -> bool:
    """True for "file.py:fn" and "pkg.module:fn"; false for model and weights files."""
    module, sep, name = reference.rpartition(":")
    return bool(sep and module and name) and "/" not in name and "\\" not in name
