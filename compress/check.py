"""`compress check`, the CI gate: a report against budgets (a budget file's, else its recipe's)
and, with a baseline report, against relative limits; `--update-baseline` writes the report as
the new baseline when it passes.

This module reads and writes the files; the evaluation lives with the report
(compress/report/budgets.py and baseline.py) and the output in compress/report/gate.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from compress.atomic import read_text_or_fail, write_text_or_fail
from compress.errors import RecipeError, UsageError
from compress.recipe import Budgets
from compress.report.baseline import (
    RelativeBudgets,
    baseline_rows,
    optional_fraction,
    other_model,
    relative_limits,
)
from compress.report.budgets import CheckResult, budget_rows
from compress.report.schema import Report, read_report_text
from compress.schema import StrictModel
from compress.suggest import closest_key
from compress.yaml_source import Located, locate, parse_yaml

# --- budget files ------------------------------------------------------------------------------


class BudgetFile(StrictModel):
    """A `--budget FILE` for `compress check`: absolute budgets, relative limits, a margin."""

    version: Literal[1] = 1
    budgets: Budgets | None = None
    relative: RelativeBudgets | None = None
    warn_margin: float | None = Field(
        None, description='e.g. "5%": a passing value within 5% of its absolute limit warns'
    )

    @field_validator("warn_margin", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        return optional_fraction(value)


def load_budget_file(path: str | Path) -> BudgetFile:
    """Read and validate a budget file: unreadable -> ReadError (exit 3); invalid YAML or
    content -> RecipeError (exit 2) with file:line:col messages."""
    path = Path(path)
    return parse_budget_file(parse_yaml(read_text_or_fail(path, "budget file"), path))


def parse_budget_file(source: Located) -> BudgetFile:
    if not isinstance(source.data, dict):
        raise RecipeError(
            f"{source.path}:1:1: a budget file is a mapping with budgets, relative and/or "
            "warn_margin"
        )
    try:
        return BudgetFile.model_validate(source.data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            unknown = error["type"] == "extra_forbidden"
            message = (
                "unknown key (not part of a budget file)"
                if unknown
                else error["msg"].removeprefix("Value error, ")
            )
            suggestion = closest_key(BudgetFile, source.data, loc) if unknown else None
            if suggestion:
                message += f"; did you mean {suggestion!r}?"
            lines.append(
                f"{locate(source, loc, at_key=unknown)}: {'.'.join(map(str, loc))}: {message}"
            )
        raise RecipeError("\n".join(dict.fromkeys(lines))) from None


def recipe_budgets(report: Report, path: str | Path = "<report>") -> Budgets | None:
    """The budgets of the recipe embedded in a report (`recipe.spec.budgets`)."""
    spec = report.recipe.get("spec") if isinstance(report.recipe, dict) else None
    raw = spec.get("budgets") if isinstance(spec, dict) else None
    if raw is None:
        return None
    try:
        return Budgets.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UsageError(
            f"{path}: invalid report: recipe.spec.budgets.{where}: {first['msg']}"
        ) from None


# --- the `compress check` command's work --------------------------------------------------------


def check(
    report_path: str | Path,
    *,
    budget_path: str | Path | None = None,
    baseline_path: str | Path | None = None,
    max_increase: float | None = None,
    warn_margin: float | None = None,
    strict: bool = False,
    update_baseline: bool = False,
    other_model_allowed: bool = False,
) -> CheckResult:
    """Check a report against budgets (the budget file's, else its recipe's) and, with
    `baseline_path`, against a baseline report. With `update_baseline`, a report that passes
    (warnings allowed unless `strict`) is written atomically as the new baseline, which need
    not exist yet. A baseline of another model (other_model in compress/report/baseline.py)
    is refused unless `other_model_allowed`, which turns the refusal into a message.

    Raises ReadError (exit 3) for files that cannot be read and UsageError (exit 2) for invalid
    reports, budget files or arguments; budget failures are in the result, not raised.
    """
    if update_baseline and baseline_path is None:
        raise UsageError("--update-baseline needs --baseline FILE (where to write it)")
    if max_increase is not None and baseline_path is None:
        raise UsageError("--max-increase compares with a baseline: give --baseline FILE")
    text = read_report_text(report_path)
    report = Report.parse(text, report_path)
    budget_file = load_budget_file(budget_path) if budget_path is not None else None
    if budget_file is not None:
        budgets, source = budget_file.budgets, str(budget_path)
        margin = warn_margin if warn_margin is not None else budget_file.warn_margin
    else:
        budgets, source, margin = recipe_budgets(report, report_path), "recipe", warn_margin
    if budget_file is not None and budget_file.relative and baseline_path is None:
        raise UsageError(f"{budget_path}: relative limits need a baseline: give --baseline FILE")
    if budgets is None:
        source = None
    baseline = None
    if baseline_path is not None:
        missing = not Path(baseline_path).exists()
        if not (update_baseline and missing):
            baseline = Report.read(Path(baseline_path))
    difference = other_model(report, baseline) if baseline is not None else None
    if difference and not other_model_allowed:
        raise UsageError(
            f"the baseline {baseline_path} is a report of another model ({difference}): its "
            "deltas would mix two models; give a baseline of this model, or "
            "--allow-other-model to compare anyway"
        )
    rows = budget_rows(report, budgets, margin)
    if baseline_path is not None:
        relative = budget_file.relative if budget_file is not None else None
        rows += baseline_rows(report, baseline, relative_limits(relative, max_increase))
    if not rows:
        where = (
            f"{budget_path} has no budgets"
            if budget_file is not None
            else f"the recipe in {report_path} has no budgets"
        )
        raise UsageError(f"nothing to check: {where}; give --budget FILE or --baseline REPORT")
    result = CheckResult(
        report=str(report_path),
        rows=rows,
        baseline=None if baseline_path is None else str(baseline_path),
        budgets_from=source,
        strict=strict,
    )
    if difference:
        result.messages.append(f"warning: the baseline is a report of another model ({difference})")
    if update_baseline:
        assert baseline_path is not None
        if result.status == "fail":
            result.messages.append(f"baseline {baseline_path} not updated: the check failed")
        else:
            write_baseline(text, Path(baseline_path))
            result.baseline_updated = True
            result.messages.append(f"baseline {baseline_path} updated from {report_path}")
    return result


def write_baseline(report_text: str, path: Path) -> None:
    """Write a report's text as the baseline file, atomically (old file or new, never partial)."""
    write_text_or_fail(path, report_text, "baseline")
