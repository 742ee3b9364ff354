"""Budgets evaluated on a report: absolute limits (`max`/`min`) on the compressed model's
figures, one row per bound. `compress apply` stores the pass/fail results in `report.budgets`;
`compress check` adds warnings and the rows of relative limits (compress/report/baseline.py).

Statuses: pass, warn, fail, new. A check fails when one limit fails, and with `strict` also when
one warns. Rendering is in compress/report/gate.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Literal

import compress.units as units
from compress.errors import EXIT_BUDGET, EXIT_OK
from compress.metrics import Metric, budget_metrics
from compress.recipe import Budgets, Limit
from compress.report.schema import BudgetResult, Report
from compress.units import Unit, format_percent

Status = Literal["pass", "warn", "fail", "new"]


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
    unit: Unit = "score"  # how the figures are shown (compress/units.py)

    @property
    def limit_text(self) -> str:
        """The limit as people read it, in the figure's unit (a relative limit as it is)."""
        return shown_limit(self.unit, self.limit) if self.check == "budget" else self.limit

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
    for metric in budget_metrics():
        limit: Limit | None = getattr(budgets, metric.name, None) if budgets else None
        if limit is None:
            continue
        value, unit = metric.value(report), metric.unit_for(report.evaluate_metric)
        for bound in ("max", "min"):
            threshold = getattr(limit, bound)
            if threshold is not None:
                rows.append(_judge(metric, unit, bound, threshold, value, warn_margin))
    return rows


def _judge(
    metric: Metric,
    unit: Unit,
    bound: str,
    threshold: float,
    value: float | None,
    warn_margin: float | None,
) -> CheckRow:
    status: Status
    note = ""
    if value is None:
        status, note = "fail", "not measured in this report"
    elif not (value <= threshold if bound == "max" else value >= threshold):
        status, note = "fail", excess(unit, bound, threshold, value)
    elif warn_margin and abs(value - threshold) <= warn_margin * abs(threshold):
        status, note = "warn", f"within {format_percent(warn_margin)} of the limit"
    else:
        status = "pass"
    if metric.sized:
        shown = f"{int(threshold)} B"
    elif metric.unit == "count" and float(threshold).is_integer():
        shown = str(int(threshold))  # "max 1114111", not "max 1.11411e+06"
    else:
        shown = f"{threshold:g}"
    return CheckRow(
        metric=metric.name,
        check="budget",
        limit=f"{bound} {shown}",
        value=value,
        status=status,
        note=note,
        unit=unit,
    )


def excess(unit: Unit, bound: str, threshold: float, value: float) -> str:
    """How far a value is past its limit, in the figure's unit: "0.11 pts over the limit",
    "0.374 ms over the limit (4.74x)" (a ratio only where the unit has a zero that means none)."""
    side = "over" if bound == "max" else "under"
    amount = units.shown("points" if unit == "fraction" else unit, abs(value - threshold))
    ratio = f" ({value / threshold:.2f}x)" if unit in ("bytes", "count", "ms") and threshold else ""
    return f"{amount} {side} the limit{ratio}"


_LIMIT = re.compile(r"^(max|min) (\S+?)(?: B)?$")


def parse_limit(limit: str) -> tuple[str, float] | None:
    """The bound and threshold of an absolute limit as report.json writes it ("max 60000 B",
    "min 0.75"); None for other text (a relative limit, "+2% max")."""
    match = _LIMIT.match(limit)
    return None if match is None else (match.group(1), float(match.group(2)))


def shown_limit(unit: Unit, limit: str) -> str:
    """An absolute limit in its figure's unit ("max 60,000 B", "max 1.00 pts", "max 0.1 ms");
    any other text as it is."""
    parsed = parse_limit(limit)
    return limit if parsed is None else f"{parsed[0]} {units.limit(unit, parsed[1])}"
