""" "Did you mean": the closest name the schema takes where a recipe or budget file has an
unknown key or value (a typo such as `sparsty` then names `sparsity`)."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from compress.passes.base import PassConfig
from compress.passes.registry import class_of

#: How alike a name must be to be suggested (difflib's ratio).
CUTOFF = 0.6


def closest(word: str, names: typing.Iterable[str]) -> str | None:
    """The name most like `word`, if one is alike enough."""
    found = difflib.get_close_matches(word, list(names), n=1, cutoff=CUTOFF)
    return found[0] if found else None


def closest_key(root: type[BaseModel], data: Any, loc: tuple) -> str | None:
    """The key the schema takes beside the unknown key at `loc` that is most like it."""
    model = _model_at(root, data, loc[:-1])
    if model is None or not loc:
        return None
    names = [field.alias or name for name, field in model.model_fields.items()]
    return closest(str(loc[-1]), names)


def _model_at(annotation: Any, data: Any, parts: tuple) -> type[BaseModel] | None:
    """The model class that validates the mapping at `parts` under `annotation`."""
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        model = _concrete(annotation, data)
        if not parts:
            return model
        field = model.model_fields.get(str(parts[0]))
        if field is None or not isinstance(data, dict):
            return None
        return _model_at(field.annotation, data.get(parts[0]), parts[1:])
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    index = parts[0] if parts and isinstance(parts[0], int) else None
    if origin is list and isinstance(data, list) and index is not None and index < len(data):
        return _model_at(args[0], data[index], parts[1:])
    if origin is dict and parts and isinstance(data, dict) and len(args) == 2:
        return _model_at(args[1], data.get(parts[0]), parts[1:])
    return None


def _unwrapped(annotation: Any) -> Any:
    """`annotation` without Annotated and Optional wrappers (the one model of a union)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [
                arg
                for arg in typing.get_args(annotation)
                if (isinstance(arg, type) and issubclass(arg, BaseModel))
                or typing.get_origin(arg) in (list, dict)
            ]
            if len(models) != 1:
                return None
            annotation = models[0]
        else:
            return annotation


def _concrete(model: type[BaseModel], data: Any) -> type[BaseModel]:
    """A pass's own config class (chosen by its type and selectors), else `model`."""
    if model is PassConfig and isinstance(data, dict):
        try:
            return class_of(data)
        except (ValidationError, PydanticCustomError):
            return model
    return model
