"""One tuning trial: a plain recipe written to its own folder and run by the real pipeline; and
tuning.json (schema version 1), the log of every trial."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from compress.analysis.subject import Subject
from compress.atomic import write_text_or_fail
from compress.errors import CompressError
from compress.metrics import METRICS
from compress.pipeline import VerifiedBaseline, run
from compress.recipe import Recipe, as_recipe, check_usage
from compress.report.rows import budget_lines
from compress.tuning.relocate import relocated

TUNING_SCHEMA_VERSION = 1
#: The figures a trial records (from its report).
FIGURES = (
    "accuracy",
    "accuracy_drop",
    "perplexity",
    "perplexity_increase",
    "sparsity",
    "size_bytes",
    "size_gzip_bytes",
    "params",
    "macs",
    "latency_p50_ms",
    "fidelity",
)


class Trial(BaseModel):
    """What one trial asked (a level search: `level` overall, `levels` per layer; a width
    search: `widths`) and got."""

    index: int
    why: str
    level: float = 0.0
    levels: dict[str, float] = Field(default_factory=dict)
    #: quantized nodes kept in float (added to the quantize pass's ignore)
    keep_float: list[str] = Field(default_factory=list)
    #: a width search's weight-only settings: algorithm, block_size, int8_nodes
    widths: dict[str, Any] | None = None
    predicted_drop: float = 0.0
    status: Literal["pass", "fail", "error"]
    #: budgets that failed, as "metric limit (got value)" in the metric's unit
    failed: list[str] = Field(default_factory=list)
    #: whether a quality budget (accuracy) failed: the level went too far
    too_far: bool = False
    achieved: float | None = None
    figures: dict[str, float | None] = Field(default_factory=dict)
    error: str | None = None
    seconds: float
    recipe: str


def quality_lost(trial: Trial) -> float | None:
    """What a trial lost against the baseline: its accuracy drop, else its relative perplexity
    increase (a perplexity metric)."""
    drop = trial.figures.get("accuracy_drop")
    return trial.figures.get("perplexity_increase") if drop is None else drop


class Tuning(BaseModel):
    schema_version: int = TUNING_SCHEMA_VERSION
    tool_version: str
    recipe: dict
    pass_index: int
    method: str
    #: what was searched: a prune pass's levels, or a weight-only pass's widths
    search: Literal["levels", "widths"] = "levels"
    budgets: dict
    #: the recipe's evaluate metric: drops are in points for accuracy and top5
    evaluate_metric: str | None = None
    trials: list[Trial]
    best: int | None
    interrupted: bool = False
    tuned: str | None = None
    seconds: float

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @property
    def best_trial(self) -> Trial | None:
        return None if self.best is None else self.trials[self.best - 1]


def write_recipe(data: dict, recipe: Recipe, path: Path, export: str, header: str = "") -> None:
    """Write `data` (of `recipe`) as a recipe file at `path`, its paths relative to it and its
    export going to `export` (relative to the file), after the comment lines `header`."""
    moved = relocated(data, recipe, path.parent)
    moved["export"] = {**moved.get("export", {}), "path": export}
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    text = comment + yaml.safe_dump(moved, sort_keys=False, allow_unicode=True)
    write_text_or_fail(path, text, "recipe")


def run_trial(
    index: int,
    why: str,
    data: dict,
    recipe: Recipe,
    folder: Path,
    pass_index: int,
    asked: dict[str, Any],
    subject: Subject,
) -> Trial:
    """Run the recipe `data` from `folder` (its recipe.yaml, report and model land there),
    copying the `subject`'s verified baseline instead of exporting it again (trials differ
    from the recipe only in their passes); `asked` holds the Trial fields that say what the
    search asked for."""
    export = subject.export
    verified = None if export is None else VerifiedBaseline(subject.baseline, export)
    path = folder / "recipe.yaml"
    write_recipe(data, recipe, path, "model.onnx")
    started = time.perf_counter()
    common = {"index": index, "why": why, **asked, "recipe": str(path)}
    try:
        report = run(check_usage(as_recipe(path), "apply"), progress=False, verified=verified)
    except CompressError as exc:
        seconds = round(time.perf_counter() - started, 2)
        return Trial(**common, status="error", too_far=True, error=str(exc), seconds=seconds)
    failed = [b for b in budget_lines(report) if b.status == "fail"]
    figures = {name: METRICS[name].value(report) for name in FIGURES}
    return Trial(
        **common,
        status="fail" if failed else "pass",
        failed=[f"{b.metric} {b.limit} (got {b.value})" for b in failed],
        too_far=any(METRICS[b.metric].quality for b in failed),
        achieved=report.passes[pass_index].get("achieved_sparsity"),
        figures={k: (None if v is None else round(float(v), 6)) for k, v in figures.items()},
        seconds=round(time.perf_counter() - started, 2),
    )
