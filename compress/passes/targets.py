"""Which layers a pass touches: `targets` and `ignore` patterns against a model's layers.

Patterns are exact layer names, or regular expressions prefixed with `re:` (full match).
A pattern that matches nothing is an error, as is a target that cannot take the pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from compress.errors import ModelError


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
) -> list[LayerInfo]:
    """Return the prunable layers selected by targets minus ignore, in model order.

    `targets=None` means every layer that can take the pass. Raises ModelError naming the
    pattern that matched nothing, or the layer that cannot take the pass.
    """
    for pattern in [*(targets or []), *ignore]:
        matched = [layer for layer in layers if matches(pattern, layer.name)]
        if not matched:
            known = ", ".join(layer.name for layer in layers if layer.prunable) or "none"
            raise ModelError(
                f"{pass_name}: target {pattern!r} matches no layer of the model "
                f"(layers it can take: {known})"
            )
        if pattern in (targets or []) and not any(layer.prunable for layer in matched):
            bad = matched[0]
            raise ModelError(
                f"{pass_name}: layer {bad.name!r} ({bad.kind}) has no weight this pass can take"
            )
    chosen = [
        layer
        for layer in layers
        if layer.prunable
        and (targets is None or any(matches(p, layer.name) for p in targets))
        and not any(matches(p, layer.name) for p in ignore)
    ]
    if not chosen:
        raise ModelError(f"{pass_name}: targets and ignore leave no layer to work on")
    return chosen
