"""Budgets and baselines: limits on a report's figures, checked at the end of `compress apply`
and by `compress check` (the CI gate).

Two kinds of limit:

- absolute budgets (`Budgets`, the recipe's `budgets:` section or a budget file): `max`/`min` on
  the compressed model's figures. With a warning margin, a value that passes but lies within
  that fraction of its limit is `warn`.
- relative limits against a baseline report (an earlier run's report.json): how much a figure
  may grow (`max_increase`) or shrink (`max_decrease`) compared with the same figure in the
  baseline, with an optional `warn` threshold below the limit. A figure the baseline does not
  have is `new`.

Statuses: pass, warn, fail, new. A check fails when one limit fails, and with `strict` also when
one warns. This module has no output code: compress/report/gate.py renders a CheckResult.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from compress.atomic import read_text_or_fail, write_text_or_fail
from compress.errors import EXIT_BUDGET, EXIT_OK, RecipeError, UsageError
from compress.recipe import Budgets, Limit, SizeLimit
from compress.report.schema import BudgetResult, Report, read_report_text
from compress.schema import StrictModel
from compress.units import format_percent, parse_fraction
from compress.yaml_source import Located, locate, parse_yaml

Status = Literal["pass", "warn", "fail", "new"]

#: The relative limit size metrics get when a baseline is given and nothing else is said.
DEFAULT_MAX_INCREASE = 0.02
SIZE_METRICS = ("size_bytes", "size_gzip_bytes")
#: Float slack when comparing a figure with its limit (a change of exactly 2% passes 2%).
_EPSILON = 1e-9


@dataclass(frozen=True)
class Metric:
    """A figure of a report that budgets and comparisons refer to."""

    key: str
    label: str
    kind: Literal["size", "count", "fraction", "ms"]
    better: Literal["lower", "higher"]


#: Every metric budgets may name, in the order reports and tables show them.
METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("size_bytes", "size", "size", "lower"),
        Metric("size_gzip_bytes", "size (gzip)", "size", "lower"),
        Metric("params", "params", "count", "lower"),
        Metric("nonzero_params", "nonzero params", "count", "lower"),
        Metric("sparsity", "sparsity", "fraction", "higher"),
        Metric("latency_p50_ms", "latency p50", "ms", "lower"),
        Metric("latency_p90_ms", "latency p90", "ms", "lower"),
        Metric("accuracy", "accuracy", "fraction", "higher"),
        Metric("accuracy_drop", "accuracy drop", "fraction", "lower"),
    )
}
assert list(METRICS) == list(Budgets.model_fields), "METRICS and Budgets must list the same keys"


def metric_value(report: Report, metric: str) -> float | None:
    """The compressed model's figure a budget metric refers to (None when not measured)."""
    comp, base = report.compressed, report.baseline
    if metric.startswith("latency_"):
        key = metric.removeprefix("latency_").removesuffix("_ms")
        return None if comp.latency_ms is None else getattr(comp.latency_ms, key)
    if metric == "accuracy_drop":
        if comp.accuracy is None or base.accuracy is None:
            return None
        return round(base.accuracy - comp.accuracy, 6)
    return getattr(comp, metric)


def format_value(metric: str, value: float | None) -> str:
    """A figure as check/compare tables show it: exact bytes, counts, ms, fractions."""
    if value is None:
        return "—"
    kind = METRICS[metric].kind if metric in METRICS else "fraction"
    if kind == "size":
        return f"{int(value):,} B"  # exact: a 2% gate on a small file needs every byte
    if kind == "count":
        return f"{int(value):,}"
    if kind == "ms":
        return f"{value:.3f} ms"
    return f"{value:.4f}"


# --- budget files ------------------------------------------------------------------------------


def _fraction(value: Any) -> Any:
    return None if value is None else parse_fraction(value)


class RelativeLimit(StrictModel):
    """How far a figure may move from the baseline report's, as a fraction ("2%" or 0.02)."""

    max_increase: float | None = Field(None, description='e.g. "2%": fail above +2%')
    max_decrease: float | None = Field(None, description='e.g. "1%": fail below -1%')
    warn: float | None = Field(
        None, description="a change beyond this (in a limited direction) but within it warns"
    )

    @field_validator("max_increase", "max_decrease", "warn", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        return _fraction(value)


class RelativeBudgets(StrictModel):
    """Per-metric relative limits; the same keys as `Budgets`."""

    size_bytes: RelativeLimit | None = None
    size_gzip_bytes: RelativeLimit | None = None
    params: RelativeLimit | None = None
    nonzero_params: RelativeLimit | None = None
    sparsity: RelativeLimit | None = None
    latency_p50_ms: RelativeLimit | None = None
    latency_p90_ms: RelativeLimit | None = None
    accuracy: RelativeLimit | None = None
    accuracy_drop: RelativeLimit | None = None


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
        return _fraction(value)


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


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckRow:
    """One limit checked: an absolute budget or a comparison with the baseline report."""

    metric: str
    check: Literal["budget", "baseline"]
    limit: str
    value: float | None
    status: Status
    baseline: float | None = None  # the baseline report's figure (baseline rows)
    change: float | None = None  # (value - baseline) / |baseline|: 0.03 = +3%
    note: str = ""

    def as_budget_result(self) -> BudgetResult:
        return BudgetResult(
            metric=self.metric, limit=self.limit, value=self.value, status=self.status
        )


@dataclass
class CheckResult:
    """Everything `compress check` decided; `exit_code` is what the command exits with."""

    report: str
    rows: list[CheckRow]
    baseline: str | None = None
    budgets_from: str | None = None  # "recipe", a budget file path, or None
    strict: bool = False
    baseline_updated: bool = False
    messages: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(row.status == status for row in self.rows)

    @property
    def status(self) -> Literal["pass", "warn", "fail"]:
        if self.count("fail") or (self.strict and self.count("warn")):
            return "fail"
        return "warn" if self.count("warn") else "pass"

    @property
    def exit_code(self) -> int:
        return EXIT_BUDGET if self.status == "fail" else EXIT_OK

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "report": self.report,
            "baseline": self.baseline,
            "budgets_from": self.budgets_from,
            "strict": self.strict,
            "counts": {s: self.count(s) for s in ("pass", "warn", "fail", "new")},
            "results": [_finite(asdict(row)) for row in self.rows],
            "baseline_updated": self.baseline_updated,
            "messages": self.messages,
        }


def _finite(row: dict) -> dict:
    """JSON has no infinity: a change from a baseline of 0 is null there (the note says so)."""
    change = row["change"]
    if change is not None and not math.isfinite(change):
        row["change"] = None
        row["note"] = row["note"] or "the baseline figure is 0"
    return row


def evaluate_budgets(report: Report, budgets: Budgets | None) -> list[BudgetResult]:
    """One pass/fail result per limit (what `compress apply` stores in `report.budgets`)."""
    return [row.as_budget_result() for row in budget_rows(report, budgets)]


def budget_rows(
    report: Report, budgets: Budgets | None, warn_margin: float | None = None
) -> list[CheckRow]:
    """Absolute limits: one row per bound. A limit on something that was not measured fails;
    a passing value within `warn_margin` (a fraction of the limit) of its limit warns."""
    rows = []
    for metric in METRICS:
        limit: Limit | None = getattr(budgets, metric, None) if budgets else None
        if limit is None:
            continue
        value = metric_value(report, metric)
        for bound in ("max", "min"):
            threshold = getattr(limit, bound)
            if threshold is None:
                continue
            status: Status
            note = ""
            if value is None:
                status, note = "fail", "not measured in this report"
            elif not (value <= threshold if bound == "max" else value >= threshold):
                status = "fail"
                if threshold:
                    off = abs(value - threshold) / abs(threshold)
                    note = f"{off:.1%} {'over' if bound == 'max' else 'under'} the limit"
            elif warn_margin and abs(value - threshold) <= warn_margin * abs(threshold):
                status, note = "warn", f"within {format_percent(warn_margin)} of the limit"
            else:
                status = "pass"
            rows.append(
                CheckRow(
                    metric=metric,
                    check="budget",
                    limit=f"{bound} {_show(threshold, limit)}",
                    value=value,
                    status=status,
                    note=note,
                )
            )
    return rows


def _show(threshold: float, limit: Limit) -> str:
    return f"{int(threshold)} B" if isinstance(limit, SizeLimit) else f"{threshold:g}"


def relative_limits(
    budget_file: BudgetFile | None, max_increase: float | None
) -> dict[str, RelativeLimit]:
    """The relative limits to check against a baseline: the budget file's `relative:` entries;
    size metrics get `max_increase` when given (replacing the file's limit, keeping its `warn`),
    else the file's entry, else a 2% increase. Latency is compared only when the file asks
    (CI machines are noisy)."""
    relative = budget_file.relative if budget_file and budget_file.relative else None
    limits: dict[str, RelativeLimit] = {}
    for metric in METRICS:
        entry = getattr(relative, metric, None) if relative else None
        if metric in SIZE_METRICS:
            if max_increase is not None:
                warn = entry.warn if entry else None
                if warn is not None and warn > max_increase:
                    warn = None
                entry = RelativeLimit(max_increase=max_increase, warn=warn)
            elif entry is None:
                entry = RelativeLimit(max_increase=DEFAULT_MAX_INCREASE)
        if entry is not None:
            limits[metric] = entry
    return limits


def baseline_rows(
    report: Report, baseline: Report | None, limits: dict[str, RelativeLimit]
) -> list[CheckRow]:
    """Relative limits against the baseline report's compressed figures. A figure the baseline
    lacks (or no baseline yet) is `new`; a figure this report lacks fails."""
    rows = []
    for metric, limit in limits.items():
        value = metric_value(report, metric)
        before = metric_value(baseline, metric) if baseline is not None else None
        text = _relative_text(limit)
        if value is None:
            rows.append(
                CheckRow(
                    metric,
                    "baseline",
                    text,
                    None,
                    "fail",
                    before,
                    None,
                    "not measured in this report",
                )
            )
            continue
        if before is None:
            note = "no baseline yet" if baseline is None else "not in the baseline report"
            rows.append(CheckRow(metric, "baseline", text, value, "new", None, None, note))
            continue
        change = _change(before, value)
        status, note = _judge_change(change, limit)
        rows.append(CheckRow(metric, "baseline", text, value, status, before, change, note))
    return rows


def _judge_change(change: float, limit: RelativeLimit) -> tuple[Status, str]:
    """fail beyond a limit, warn beyond `warn` in a limited direction, else pass."""
    direction, moved, allowed = (
        ("increase", change, limit.max_increase)
        if change >= 0
        else ("decrease", -change, limit.max_decrease)
    )
    if allowed is None or moved <= _EPSILON:
        return "pass", ""
    if moved > allowed + _EPSILON:
        return "fail", f"{direction} of {_pct(moved)} is over {format_percent(allowed)}"
    if limit.warn is not None and moved > limit.warn + _EPSILON:
        return "warn", f"{direction} of {_pct(moved)} is over the warning level " + (
            format_percent(limit.warn)
        )
    return "pass", ""


def _change(before: float, after: float) -> float:
    if before == 0:
        return 0.0 if after == 0 else math.copysign(math.inf, after)
    return (after - before) / abs(before)


def _pct(fraction: float) -> str:
    return "∞" if math.isinf(fraction) else f"{fraction * 100:.2f}%"


def _relative_text(limit: RelativeLimit) -> str:
    parts = []
    if limit.max_increase is not None:
        parts.append(f"+{format_percent(limit.max_increase)} max")
    if limit.max_decrease is not None:
        parts.append(f"-{format_percent(limit.max_decrease)} max")
    if not parts:
        return "compared only"
    if limit.warn is not None:
        parts.append(f"warn {format_percent(limit.warn)}")
    return ", ".join(parts)


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
) -> CheckResult:
    """Check a report against budgets (the budget file's, else its recipe's) and, with
    `baseline_path`, against a baseline report. With `update_baseline`, a report that passes
    (warnings allowed unless `strict`) is written atomically as the new baseline, which need
    not exist yet.

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
    rows = budget_rows(report, budgets, margin)
    if baseline_path is not None:
        rows += baseline_rows(report, baseline, relative_limits(budget_file, max_increase))
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
