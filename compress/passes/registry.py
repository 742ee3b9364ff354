"""The registry: pass types by their recipe `type`, and their handlers by (pass class, backend).

Registration is explicit and by class (torchao style):

    register_pass(PrunePass)
    register_handler(PrunePass, "torch", "compress.backends.torch.pruning:apply_prune")

    @register_handler(ToyPass, "torch")
    def apply_toy(model, config, context): ...

A handler given as "module:function" is imported when first used, so the table is read without
importing any framework. Handlers registered for backend `onnx` rewrite exported ONNX files
(`handler(source, target, config, context) -> dict`): the stage every framework shares. The
others change framework models (`handler(model, config, context) -> (model, dict)`). The dict
says what the pass did; the pass's record type validates it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, SerializeAsAny
from pydantic_core import PydanticCustomError

from compress.errors import ModelError
from compress.passes.base import PassConfig, PassRecord

#: The backend name whose handlers work on exported ONNX files.
ONNX = "onnx"

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)
P = TypeVar("P", bound=type[PassConfig])

_PASSES: dict[str, type[PassConfig]] = {}
_HANDLERS: dict[tuple[type[PassConfig], str], Handler | str] = {}


def register_pass(cls: P) -> P:
    """Make `cls` a pass type of recipes and reports, under its `type` tag."""
    _PASSES[cls.model_fields["type"].default] = cls
    return cls


def pass_types() -> list[type[PassConfig]]:
    """The registered pass classes, in registration order."""
    return list(_PASSES.values())


def pass_names() -> list[str]:
    """The `type` tags of the registered passes."""
    return list(_PASSES)


def register_handler(
    pass_type: type[PassConfig], backend: str, handler: Handler | str | None = None
) -> Callable[[H], H]:
    """Register the handler of `pass_type` on `backend` (a "module:function" reference is
    imported on first use). Without `handler`, returns a decorator."""

    def register(function: H) -> H:
        _HANDLERS[(pass_type, backend)] = function
        return function

    if handler is not None:
        _HANDLERS[(pass_type, backend)] = handler
    return register


def backends_for(pass_type: type[PassConfig]) -> list[str]:
    """The backends with a handler for `pass_type`, sorted (`onnx`: the exported file)."""
    return sorted(backend for cls, backend in _HANDLERS if cls is pass_type)


def handler_for(config: PassConfig, backend: str, hint: str = "") -> Handler:
    """The handler that runs `config` where it works: the exported ONNX file for an onnx-stage
    pass, else the `backend` model. Unsupported pairs get this one error (exit 3), naming the
    backends that run the pass, and `hint` (what the backend takes instead)."""
    target = ONNX if config.stage == "onnx" else backend
    on_file = config.stage == "model" and backend == ONNX  # an ONNX input is no framework model
    entry = None if on_file else _HANDLERS.get((type(config), target))
    if entry is None:
        raise _unsupported(config, target, hint)
    if isinstance(entry, str):
        module, name = entry.split(":")
        entry = getattr(import_module(module), name)
        _HANDLERS[(type(config), target)] = entry
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


def _pass_config(value: Any) -> Any:
    """Validate a recipe's pass mapping as the class its `type` names."""
    if not isinstance(value, dict):
        return value
    known = ", ".join(pass_names())
    if "type" not in value:
        raise PydanticCustomError(
            "union_tag_not_found", "a pass needs a type; known types: {known}", {"known": known}
        )
    cls = _PASSES.get(value["type"]) if isinstance(value["type"], str) else None
    if cls is None:
        raise PydanticCustomError(
            "union_tag_invalid",
            "unknown pass type '{tag}'; known types: {known}",
            {"tag": value["type"], "known": known},
        )
    return cls.model_validate(value)


def _pass_record(value: Any) -> Any:
    """Validate a report's pass record as its type's record model (the base for a type this
    tool does not know, keeping every key)."""
    if not isinstance(value, dict):
        return value
    cls = _PASSES.get(value.get("type")) if isinstance(value.get("type"), str) else None
    return (cls.record if cls else PassRecord).model_validate(value)


#: A recipe pass: tagged by `type`, validated as the registered class (open to new passes).
AnyPass = Annotated[SerializeAsAny[PassConfig], BeforeValidator(_pass_config)]
#: A report pass record: tagged by `type`, validated as that pass's record model.
AnyRecord = Annotated[SerializeAsAny[PassRecord], BeforeValidator(_pass_record)]
