"""Which layers a pass touches: `targets` and `ignore` patterns against a model's layers.

Patterns are exact layer names, or regular expressions prefixed with `re:` (full match).
A pattern that matches nothing is an error, as is a target that cannot take the pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from compress.errors import RecipeError


class TargetError(RecipeError):
    """A targets/ignore entry that does not fit the model; `loc` is relative to the pass."""

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc


@dataclass(frozen=True)
class LayerInfo:
    """A layer as every backend describes it to the framework-neutral passes."""

    name: str
    kind: str
    params: int  # all parameters the layer owns
    weights: int  # elements of the weight a pass would prune (0 when not prunable)
    prunable: bool


def matches(pattern: str, name: str) -> bool:
    """True when a target pattern (a name or `re:` regex) selects the layer name."""
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return pattern == name


def resolve_targets(
    targets: Sequence[str] | None,
    ignore: Sequence[str],
    layers: Sequence[LayerInfo],
    pass_name: str,
    overrides: Sequence[str] = (),
) -> list[LayerInfo]:
    """Return the prunable layers selected by targets minus ignore, in model order.

    `targets=None` means every layer that can take the pass. Raises TargetError naming the
    pattern that matched nothing, the layer that cannot take the pass, or the per-layer
    override (`sparsity.overrides` key) that matches none of the chosen layers: a typo'd
    override would silently leave its layer at the default level.
    """
    patterns = [("targets", i, p) for i, p in enumerate(targets or [])]
    patterns += [("ignore", i, p) for i, p in enumerate(ignore)]
    for field, index, pattern in patterns:
        matched = [layer for layer in layers if matches(pattern, layer.name)]
        if not matched:
            known = ", ".join(layer.name for layer in layers if layer.prunable) or "none"
            raise TargetError(
                f"{pass_name}: {pattern!r} matches no layer of the model (layers it can take: "
                f"{known})",
                (field, index),
            )
        if field == "targets" and not any(layer.prunable for layer in matched):
            bad = matched[0]
            raise TargetError(
                f"{pass_name}: layer {bad.name!r} ({bad.kind}) has no weight this pass can take",
                (field, index),
            )
    chosen = [
        layer
        for layer in layers
        if layer.prunable
        and (targets is None or any(matches(p, layer.name) for p in targets))
        and not any(matches(p, layer.name) for p in ignore)
    ]
    if not chosen:
        raise TargetError(f"{pass_name}: targets and ignore leave no layer to work on", ())
    for pattern in overrides:
        if not any(matches(pattern, layer.name) for layer in chosen):
            known = ", ".join(layer.name for layer in chosen)
            raise TargetError(
                f"{pass_name}: override {pattern!r} matches none of the layers the pass works "
                f"on ({known})",
                ("sparsity", "overrides", pattern),
            )
    return chosen


def valid_pattern(pattern: str) -> str:
    """A layer pattern whose `re:` regular expression compiles (a schema validator: a bad one
    is a recipe error at its line, before any model is loaded)."""
    if pattern.startswith("re:"):
        try:
            re.compile(pattern[3:])
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return pattern


#: A layer name or `re:` regular expression, checked when the recipe is read.
Pattern = Annotated[str, AfterValidator(valid_pattern)]
