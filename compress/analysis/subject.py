"""What a sensitivity scan works on: the loaded model, its verified baseline export, the val
samples it is scored on, and a scratch folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.backends.base import Backend, PassContext
from compress.backends.onnx.fallback import Scorer
from compress.errors import RecipeError
from compress.recipe import Recipe
from compress.report.schema import ExportRecord

#: Val samples a scan scores on unless told otherwise.
SCAN_SAMPLES = 256


@dataclass
class Subject:
    backend: Backend
    model: Any
    context: PassContext
    baseline: Path
    scorer: Scorer
    scratch: Path
    export: ExportRecord | None = None  # the baseline's export record, when this run made it

    @property
    def recipe(self) -> Recipe:
        return self.context.recipe

    @property
    def batch(self) -> int:
        return self.recipe.eval_batch

    def bar(self, description: str, total: int) -> AbstractContextManager[Callable[..., None]]:
        """A progress bar with an ETA on stderr (off when not a terminal)."""
        return self.context.reporter.bar(description, total)


def scorer_for(context: PassContext, baseline: Path, samples: int, usage: str) -> Scorer:
    """A scorer over the first `samples` val samples against the baseline's outputs; a clear
    error when the recipe has no val data (`usage` says who needs it)."""
    recipe = context.recipe
    val = context.data.get("val")
    if val is None and recipe.data is None:
        raise recipe.error_at(
            ("data",), f"{usage} scores on the 'val' split: add a data section that returns one"
        )
    if val is None:
        returned = ", ".join(context.data) or "none"
        raise RecipeError(
            f"{usage} scores on the 'val' split, and {recipe.data.origin} returned none "
            f"(its splits: {returned})"
        )
    taken = val.take(samples)
    metric = recipe.evaluate.metric if recipe.evaluate else None
    scorer = Scorer(
        taken.inputs, taken.targets, metric, recipe.base_dir, recipe.eval_batch, os.cpu_count() or 1
    )
    return scorer.bind(baseline)
