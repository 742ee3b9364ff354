"""A CompressionSession's passes inside the user's own training loop: each model-stage pass gets
its part from its `session` role (compress/backends/handlers.py), looked up by class, so a
session never asks which pass it holds."""

from __future__ import annotations

from typing import Any, Protocol

from compress.errors import UsageError
from compress.passes.base import PassRecord
from compress.passes.prune import PruneBase
from compress.passes.pruning import Pruner
from compress.passes.registry import role_for
from compress.passes.targets import TargetError

SESSION = "session"


class SessionPart(Protocol):
    """One pass in a user's loop: moved after each optimizer step, then its record."""

    def on_update(self, step: int) -> None: ...

    def finalize(self, training: dict) -> PassRecord: ...


def session_parts(session: Any, backend: str, who: str) -> list[SessionPart]:
    """The parts of the recipe's model-stage passes (`session.context.recipe`), each made by
    its pass's `session` role as `make(session, config)`; target errors located in the recipe."""
    recipe = session.context.recipe
    parts = []
    for index, config in enumerate(recipe.passes):
        if config.stage != "model":
            continue
        make = role_for(SESSION, config, backend)
        if make is None:
            raise UsageError(f"{who} cannot run pass {type(config).label()!r}")
        try:
            parts.append(make(session, config))
        except TargetError as exc:
            raise recipe.error_at(("passes", index, *exc.loc), exc.message) from None
    return parts


class PrunePart:
    """A prune pass in the user's loop: the neutral pruner, started with the loop's length."""

    def __init__(self, config: PruneBase, pruner: Pruner, extra: dict | None = None) -> None:
        self.config, self.pruner, self.extra = config, pruner, extra or {}

    def on_update(self, step: int) -> None:
        self.pruner.on_update(step)

    def finalize(self, training: dict) -> PassRecord:
        info = {**self.pruner.finalize(training), **self.extra}
        return self.config.record_of(info, seconds=None)
