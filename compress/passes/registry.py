"""The registry: pass classes by their recipe tag (`type` plus the selector fields that pick an
algorithm, such as `method` or `mode`), and every role's code by (role, pass class, backend).

Registration is explicit and by class (torchao style):

    register_pass(MagnitudePrune)
    register_handler(MagnitudePrune, "torch", "compress.backends.torch.pruning:apply_prune")
    register_role("scan", MagnitudePrune, "compress.analysis.weight_scan:scan_magnitude")

    @register_handler(ToyPass, "torch")
    def apply_toy(model, config, context): ...

Roles: `apply` (the handler that runs a pass on one backend: `handler(model, config, context)
-> (model, dict)`, or for backend `onnx`, `handler(source, target, config, context) -> dict`),
`session` (the part a CompressionSession runs inside a user's loop, per backend), `scan`
(`compress analyze`'s per-layer sensitivity), `plan` (what an ONNX-stage pass will do to a
file: `handler(path, config, context) -> dict`, for `compress plan`), `levels` (the
sensitivity scan that `allocation: sensitivity` and `compress tune` allocate levels from) and
`generation` (applies an ONNX-stage pass to a generation (KV-cache) decoder graph without
calibration or fallback: `handler(source: Path, target: Path, config, context) -> dict`
record; `context.generation_state` holds what the pass left for it on the exported file).
A reference given as "module:function" is imported when first used, so the table is read
without importing any framework. Nothing outside `compress/passes/` asks which class a pass
is: it asks this registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import import_module
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, SerializeAsAny, ValidationError, create_model
from pydantic_core import PydanticCustomError

from compress.errors import ModelError
from compress.passes.base import PassConfig, PassRecord

#: The backend name whose handlers work on exported ONNX files.
ONNX = "onnx"
#: The backend key of roles that do not depend on the framework.
ANY = "*"
APPLY = "apply"
#: The role that plans an ONNX-stage pass on an exported file (`compress plan`).
PLAN = "plan"
#: The role that applies an ONNX-stage pass to a generation (KV-cache) decoder graph, without
#: calibration or fallback: `handler(source, target, config, context) -> dict`.
GENERATION = "generation"

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)
P = TypeVar("P", bound=type[PassConfig])

_PASSES: dict[tuple[str, ...], type[PassConfig]] = {}
_ROLES: dict[tuple[str, type[PassConfig], str], Handler | str] = {}


def register_pass(cls: P) -> P:
    """Make `cls` a pass of recipes and reports, under its `type` and selector values."""
    _PASSES[(cls.tag(), *cls.selection())] = cls
    return cls


def pass_types() -> list[type[PassConfig]]:
    """The registered pass classes, in registration order."""
    return list(_PASSES.values())


def pass_names() -> list[str]:
    """The `type` tags of the registered passes."""
    return list(dict.fromkeys(key[0] for key in _PASSES))


def register_role(
    role: str, pass_type: type[PassConfig], handler: Handler | str | None = None, backend: str = ANY
) -> Callable[[H], H]:
    """Register what plays `role` for `pass_type` (on `backend`, or on every backend); a
    "module:function" reference is imported on first use. Without `handler`, a decorator."""

    def register(function: H) -> H:
        _ROLES[(role, pass_type, backend)] = function
        return function

    if handler is not None:
        _ROLES[(role, pass_type, backend)] = handler
    return register


def register_handler(
    pass_type: type[PassConfig], backend: str, handler: Handler | str | None = None
) -> Callable[[H], H]:
    """Register the handler that applies `pass_type` on `backend` (the `apply` role)."""
    return register_role(APPLY, pass_type, handler, backend)


def role_for(role: str, config: PassConfig, backend: str = ANY) -> Handler | None:
    """What plays `role` for this pass's class on `backend` (or on every backend), or None."""
    for key in ((role, type(config), backend), (role, type(config), ANY)):
        entry = _ROLES.get(key)
        if entry is not None:
            if isinstance(entry, str):
                module, name = entry.split(":")
                entry = getattr(import_module(module), name)
                _ROLES[key] = entry
            return entry
    return None


def backends_for(pass_type: type[PassConfig], role: str = APPLY) -> list[str]:
    """The backends with a handler of `role` for `pass_type`, sorted (`onnx`: the file)."""
    return sorted(b for r, cls, b in _ROLES if r == role and cls is pass_type and b != ANY)


def classes_with(role: str) -> list[type[PassConfig]]:
    """The registered pass classes that have something registered for `role`."""
    having = {cls for r, cls, _ in _ROLES if r == role}
    return [cls for cls in _PASSES.values() if cls in having]


def handler_for(config: PassConfig, backend: str, hint: str = "") -> Handler:
    """The handler that runs `config` where it works: the exported ONNX file for an onnx-stage
    pass, else the `backend` model. Unsupported pairs get this one error (exit 3), naming the
    backends that run the pass, and `hint` (what the backend takes instead)."""
    target = ONNX if config.stage == "onnx" else backend
    on_file = config.stage == "model" and backend == ONNX  # an ONNX input is no framework model
    entry = None if on_file else role_for(APPLY, config, target)
    if entry is None:
        raise _unsupported(config, target, hint)
    return entry


def _unsupported(config: PassConfig, target: str, hint: str) -> ModelError:
    others = [
        backend
        for backend in backends_for(type(config))
        if (backend == ONNX) == (config.stage == "onnx")
    ]
    where = "ONNX files" if config.stage == "onnx" else f"{target} models"
    runs = f"it runs on {', '.join(others)}" if others else "no backend runs it"
    return ModelError(
        f"pass {config.type!r} is not available for {where} ({runs})"
        + (f"; {hint}" if hint else "")
    )


def class_of(value: dict) -> type[PassConfig]:
    """The registered class a recipe's pass mapping names: by `type`, then by each selector
    field in turn (a missing selector takes the class whose field has a default). Raises
    pydantic errors located at the field that does not fit."""
    known = ", ".join(pass_names())
    if "type" not in value:
        raise PydanticCustomError(
            "union_tag_not_found", "a pass needs a type; known types: {known}", {"known": known}
        )
    tag = value["type"]
    candidates = [cls for key, cls in _PASSES.items() if key[0] == tag]
    if not isinstance(tag, str) or not candidates:
        raise PydanticCustomError(
            "union_tag_invalid",
            "unknown pass type '{tag}'; known types: {known}",
            {"tag": tag, "known": known},
        )
    depth = 0
    while len(candidates) > 1 or (candidates and len(candidates[0].selectors) > depth):
        name = candidates[0].selectors[depth]
        values = list(dict.fromkeys(cls.selection()[depth] for cls in candidates))
        default = next(
            (c.selection()[depth] for c in candidates if not c.model_fields[name].is_required()),
            None,
        )
        chosen = _selector(name, values, default, value)
        candidates = [cls for cls in candidates if cls.selection()[depth] == chosen]
        depth += 1
    return candidates[0]


def _selector(name: str, values: list[str], default: str | None, value: dict) -> str:
    """The selector's value, validated as one of `values` (pydantic's own literal error, at
    the selector's location, when it is not)."""
    selector = _selector_model(name, tuple(values), default)
    chosen = selector.model_validate({name: value[name]} if name in value else {})
    return getattr(chosen, name)


@functools.cache
def _selector_model(name: str, values: tuple[str, ...], default: str | None) -> type[BaseModel]:
    annotation = Literal[values]  # type: ignore[valid-type]
    field = (annotation, default) if default is not None else (annotation, ...)
    return create_model("Selector", **{name: field})  # type: ignore[call-overload]


def foreign_field(value: Any, field: str) -> str | None:
    """Why `field` is unknown to the pass mapping `value` when another algorithm of its type
    takes it: "importance applies to method: channel only"."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return None
    try:
        chosen = class_of(value)
    except (ValidationError, PydanticCustomError):
        return None
    owners = [
        cls
        for key, cls in _PASSES.items()
        if key[0] == chosen.tag() and field in cls.model_fields and cls is not chosen
    ]
    if not owners or not chosen.selectors:
        return None
    family = _family(owners)
    return f"{field} applies to {family or _selections(chosen, owners)} only"


def _selections(chosen: type[PassConfig], owners: list[type[PassConfig]]) -> str:
    """The owners named by the first selector on which each differs from `chosen`:
    "mode: static; algorithm: gptq, awq" for a field of weight-only rtn."""
    named: dict[str, dict[str, None]] = {}
    for cls in owners:
        pairs = zip(cls.selectors, cls.selection(), strict=True)
        mine = dict(zip(chosen.selectors, chosen.selection(), strict=True))
        selector, value = next(((k, v) for k, v in pairs if mine.get(k) != v), (None, None))
        if selector is not None:
            named.setdefault(selector, {})[value] = None
    return "; ".join(f"{selector}: {', '.join(values)}" for selector, values in named.items())


def _family(owners: list[type[PassConfig]]) -> str | None:
    """A shared base's `family` words when the owners are exactly its registered classes."""
    registered = set(_PASSES.values())
    for base in owners[0].__mro__[1:]:
        words = base.__dict__.get("family")
        if words and {c for c in registered if issubclass(c, base)} == set(owners):
            return words
    return None


def _pass_config(value: Any) -> Any:
    """Validate a recipe's pass mapping as the class its tag names."""
    if not isinstance(value, dict):
        return value
    return class_of(value).model_validate(value)


def parse_pass(value: dict) -> PassConfig:
    """A pass config from its recipe mapping (as in a recipe's `passes` list)."""
    return class_of(value).model_validate(value)


def _pass_record(value: Any) -> Any:
    """Validate a report's pass record as its type's record model (the base for a type this
    tool does not know, keeping every key)."""
    if not isinstance(value, dict):
        return value
    cls = next((c for key, c in _PASSES.items() if key[0] == value.get("type")), None)
    return (cls.record if cls else PassRecord).model_validate(value)


#: A recipe pass: tagged by `type` (+ selectors), validated as the registered class.
AnyPass = Annotated[SerializeAsAny[PassConfig], BeforeValidator(_pass_config)]
#: A report pass record: tagged by `type`, validated as that pass's record model.
AnyRecord = Annotated[SerializeAsAny[PassRecord], BeforeValidator(_pass_record)]
