"""The side-by-side rows shared by the terminal table, the Markdown report and the HTML cards:
one per table metric of the catalogue (compress/metrics.py) that the report measured; and the
budget lines they all show. Figures are formatted by their unit (compress/units.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import compress.units as units
from compress.metrics import LATENCY_NOISE, METRICS, Metric
from compress.report.budgets import excess, parse_limit, shown_limit
from compress.report.schema import SLOWER_THRESHOLD, Layer, Report
from compress.units import Unit


@dataclass(frozen=True)
class Row:
    """One metric as the report shows it: its figures formatted, and raw (for exact tables)."""

    metric: Metric
    unit: Unit  # the metric's unit in this report
    label: str
    baseline: str
    compressed: str
    change: str
    before: float | None  # the baseline figure (None for a figure about the pair)
    after: float
    flag: bool = False  # the compressed model is worse here in a way the user must see
    # good: the compressed figure is better; bad: worse; "": the same, or within timing noise
    trend: Literal["good", "bad", ""] = ""


def comparison_rows(report: Report) -> list[Row]:
    """Baseline vs compressed for every table metric; a figure of both models only when both
    were measured, a figure about the pair (fidelity) when it was."""
    rows = []
    for metric in METRICS.values():
        before, after = metric.figure(report, "baseline"), metric.value(report)
        if not metric.table or after is None:
            continue
        label, unit = metric.label_for(report), metric.unit_for(report.evaluate_metric)
        if not metric.paired:
            shown = units.shown(unit, after, metric.decimals)
            rows.append(Row(metric, unit, label, "", shown, "", None, after))
        elif before is not None:
            change, flag = _change(metric, unit, before, after)
            rows.append(
                Row(
                    metric,
                    unit,
                    label,
                    units.shown(unit, before, metric.decimals),
                    units.shown(unit, after, metric.decimals),
                    change,
                    before,
                    after,
                    flag,
                    _trend(metric, before, after),
                )
            )
    return rows


@dataclass(frozen=True)
class BudgetLine:
    """A budget result of the report as every view shows it: limit and value in the metric's
    unit, and for a failure how far past the limit it is."""

    metric: str  # the budget key, as the recipe writes it
    limit: str
    value: str
    status: str
    note: str


def budget_lines(report: Report) -> list[BudgetLine]:
    lines = []
    for result in report.budgets:
        metric = METRICS.get(result.metric)
        unit: Unit = metric.unit_for(report.evaluate_metric) if metric else "score"
        parsed, note = parse_limit(result.limit), ""
        if result.status == "fail" and parsed is not None and result.value is not None:
            note = excess(unit, parsed[0], parsed[1], result.value)
        value = units.exact(unit, result.value)
        lines.append(
            BudgetLine(result.metric, shown_limit(unit, result.limit), value, result.status, note)
        )
    return lines


def _change(metric: Metric, unit: Unit, before: float, after: float) -> tuple[str, bool]:
    """The change column (points, speed-up or ratio) and whether it is flagged."""
    if unit in ("fraction", "points", "score"):
        return units.signed(unit, after - before, metric.decimals), False
    if unit == "ms":
        speedup = before / after if after else float("inf")
        text = f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"
        return text, metric.flag_slower and speedup < SLOWER_THRESHOLD
    if unit == "per_s":
        speedup = after / before if before else float("inf")
        text = f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"
        return text, speedup < SLOWER_THRESHOLD
    return ("n/a" if before == 0 else f"{after / before:.2f}x"), False


def _trend(metric: Metric, before: float, after: float) -> Literal["good", "bad", ""]:
    if metric.noisy:
        speedup = before / after if after > 0 else 1.0
        if abs(speedup - 1) <= LATENCY_NOISE:
            return ""
        return "good" if speedup > 1 else "bad"
    if after == before:
        return ""
    return "good" if (after < before) == (metric.better == "lower") else "bad"


def layer_channels(layer: Layer) -> str:
    """A layer's output channels: "64", "64 → 48" where the baseline had others, "—" unknown."""
    after, before = layer.channels, layer.baseline_channels
    if after is None:
        return "—"
    return f"{before} → {after}" if before is not None and before != after else str(after)
