"""Relative limits against a baseline report (an earlier run's report.json): how much a figure
may grow (`max_increase`) or shrink (`max_decrease`) compared with the same figure in the
baseline, with an optional `warn` threshold below the limit. A figure the baseline does not
have is `new`. The limits are a budget file's `relative:` section, one key per budget metric."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator

from compress.metrics import METRICS, budget_metrics, limits_model
from compress.report.budgets import CheckRow, Status
from compress.report.noise import compare_timing
from compress.report.schema import Report
from compress.schema import StrictModel
from compress.units import format_percent, parse_fraction

#: The relative limit size metrics get when a baseline is given and nothing else is said.
DEFAULT_MAX_INCREASE = 0.02
#: Float slack when comparing a figure with its limit (a change of exactly 2% passes 2%).
_EPSILON = 1e-9


def optional_fraction(value: Any) -> Any:
    """A percentage ("2%") or a fraction (0.02) as a fraction; None stays None."""
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
        return optional_fraction(value)


RelativeBudgets = limits_model(
    "RelativeBudgets",
    RelativeLimit,
    module=__name__,
    doc="Per-metric relative limits; the same keys as `Budgets`.",
)


def relative_limits(
    relative: RelativeBudgets | None, max_increase: float | None
) -> dict[str, RelativeLimit]:
    """The relative limits to check against a baseline: the budget file's `relative:` entries;
    size metrics get `max_increase` when given (replacing the file's limit, keeping its `warn`),
    else the file's entry, else a 2% increase. Latency is compared only when the file asks
    (CI machines are noisy)."""
    limits: dict[str, RelativeLimit] = {}
    for metric in budget_metrics():
        entry = getattr(relative, metric.name, None) if relative else None
        if metric.sized:
            if max_increase is not None:
                warn = entry.warn if entry else None
                if warn is not None and warn > max_increase:
                    warn = None
                entry = RelativeLimit(max_increase=max_increase, warn=warn)
            elif entry is None:
                entry = RelativeLimit(max_increase=DEFAULT_MAX_INCREASE)
        if entry is not None:
            limits[metric.name] = entry
    return limits


def baseline_rows(
    report: Report, baseline: Report | None, limits: dict[str, RelativeLimit]
) -> list[CheckRow]:
    """Relative limits against the baseline report's compressed figures. A figure the baseline
    lacks (or no baseline yet) is `new`; a figure this report lacks fails. A latency is judged
    as `compress compare` judges it (compress/report/noise.py): timing noise passes."""
    rows = []
    for name, limit in limits.items():
        metric = METRICS[name]
        value, unit = metric.value(report), metric.unit_for(report.evaluate_metric)
        before = metric.value(baseline) if baseline is not None else None
        text = _relative_text(limit)
        if value is None:
            note = "not measured in this report"
            rows.append(CheckRow(name, "baseline", text, None, "fail", before, None, note, unit))
            continue
        if before is None or baseline is None:
            note = "no baseline yet" if baseline is None else "not in the baseline report"
            rows.append(CheckRow(name, "baseline", text, value, "new", None, None, note, unit))
            continue
        change = _change(before, value)
        timing = compare_timing(metric, baseline, report) if metric.noisy else None
        judged = change if timing is None else (0.0 if timing.noise else timing.ratio - 1)
        status, note = _judge_change(judged, limit)
        if timing is not None and timing.why:
            note = f"{note} ({timing.why})" if note else timing.why
        rows.append(CheckRow(name, "baseline", text, value, status, before, change, note, unit))
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


def other_model(report: Report, baseline: Report) -> str | None:
    """How `baseline` is a report of another model than `report`'s (the model each started
    from: framework, parameters, layer names), or None when it is the same one."""
    if report.framework != baseline.framework:
        return f"framework {baseline.framework}, this report's {report.framework}"
    if report.baseline.params != baseline.baseline.params:
        return (
            f"its model has {baseline.baseline.params:,} params, this report's "
            f"{report.baseline.params:,}"
        )
    ours = {layer.name for layer in report.layers}
    theirs = {layer.name for layer in baseline.layers}
    if ours != theirs:
        only = sorted(theirs - ours)[:3] or sorted(ours - theirs)[:3]
        return f"its layers differ ({', '.join(only)} in one report only)"
    return None
