"""Output of `compress check` and `compress compare`: rich tables for people, Markdown for
pull-request comments and `$GITHUB_STEP_SUMMARY`. (JSON comes from the results' `to_dict`.)"""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

import compress.units as units
from compress.metrics import METRICS
from compress.report.budgets import CheckResult, CheckRow
from compress.report.compare import CompareRow, Comparison

_COLORS = {"pass": "green", "warn": "yellow", "fail": "red", "new": "cyan"}
_ICONS = {"pass": "✅", "warn": "⚠️", "fail": "❌", "new": "🆕"}


def _label(metric: str) -> str:
    return METRICS[metric].label


def _change(row: CheckRow) -> str:
    if row.change is None:
        return ""
    if math.isinf(row.change):
        return "+∞" if row.change > 0 else "-∞"
    return f"{row.change * 100:+.2f}%"


def _summary(result: CheckResult) -> str:
    counts = [
        f"{result.count(status)} {status}"
        for status in ("fail", "warn", "new", "pass")
        if result.count(status)
    ]
    text = ", ".join(counts)
    if result.strict and result.count("warn"):
        text += " (warnings fail with --strict)"
    return text


def _sources(result: CheckResult) -> str:
    parts = []
    if result.budgets_from == "recipe":
        parts.append("budgets from the report's recipe")
    elif result.budgets_from:
        parts.append(f"budgets from {result.budgets_from}")
    if result.baseline:
        parts.append(f"baseline {result.baseline}")
    return ", ".join(parts)


def print_check(result: CheckResult, console: Console | None = None) -> None:
    """The check as a table, then one summary line."""
    console = console or Console()
    table = Table(title=f"compress check: {escape(result.report)}", title_justify="left")
    for column in ("status", "check", "metric", "limit", "value", "baseline", "change", "note"):
        justify = "right" if column in ("value", "baseline", "change") else "left"
        table.add_column(column, justify=justify)
    for row in result.rows:
        table.add_row(
            f"[{_COLORS[row.status]}]{row.status}[/]",
            row.check,
            _label(row.metric),
            escape(row.limit_text),
            units.exact(row.unit, row.value),
            "" if row.check == "budget" else units.exact(row.unit, row.baseline),
            _change(row),
            escape(row.note),
        )
    console.print(table)
    if sources := _sources(result):
        console.print(sources, markup=False)
    status = result.status
    console.print(f"[{_COLORS[status]}]{status}[/]: {_summary(result)}")
    for message in result.messages:
        console.print(message, markup=False)


def check_markdown(result: CheckResult) -> str:
    """A compact Markdown summary (a few kB) for a PR comment or the job summary."""
    status = result.status
    lines = [
        f"### {_ICONS[status]} compress check: {status}",
        "",
        f"`{result.report}`" + (f" ({_sources(result)})" if _sources(result) else ""),
        "",
        "| status | check | metric | limit | value | baseline | change |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for row in result.rows:
        baseline = "" if row.check == "budget" else units.exact(row.unit, row.baseline)
        note = f" ({row.note})" if row.note else ""
        lines.append(
            f"| {_ICONS[row.status]} {row.status} | {row.check} | {_label(row.metric)} | "
            f"{row.limit_text}{note} | {units.exact(row.unit, row.value)} | {baseline} | "
            f"{_change(row)} |"
        )
    lines += ["", f"**{status}**: {_summary(result)}"]
    lines += [f"- {message}" for message in result.messages]
    return "\n".join(lines) + "\n"


def _delta(row: CompareRow) -> str:
    if row.delta is None:
        return ""
    if row.delta == 0:
        return "="
    if row.unit in ("fraction", "points", "score") or row.change is None:
        return units.signed(row.unit, row.delta)
    return f"{row.change * 100:+.2f}%"


def print_comparison(comparison: Comparison, console: Console | None = None) -> None:
    console = console or Console()
    a = f"A: {comparison.a_name}" if comparison.a_name else "A"
    b = f"B: {comparison.b_name}" if comparison.b_name else "B"
    table = Table(
        title=f"compress compare: {escape(comparison.a)} (A) vs {escape(comparison.b)} (B)",
        title_justify="left",
    )
    table.add_column("metric")
    for column in (a, b, "B vs A", "better"):
        table.add_column(escape(column), justify="right")
    for row in comparison.rows:
        style = {"a": "red", "b": "green"}.get(row.better or "", "")
        better = {"a": "A", "b": "B", "same": "="}.get(row.better or "", "")
        if row.better is None and row.delta is not None:
            better = "≈ (noise)"
        table.add_row(
            escape(row.label),
            units.exact(row.unit, row.a),
            units.exact(row.unit, row.b),
            f"[{style}]{_delta(row)}[/]" if style else _delta(row),
            better,
        )
    console.print(table)
    for row in comparison.rows:
        if row.note:
            console.print(f"{row.label}: {row.note}", markup=False)
    if comparison.layers:
        layers = Table(title="layers that differ", title_justify="left")
        for column in ("layer", "A dtype", "B dtype", "A sparsity", "B sparsity"):
            layers.add_column(
                column, justify="left" if "dtype" in column or column == "layer" else "right"
            )
        for diff in comparison.layers[:40]:
            layers.add_row(
                escape(diff.name),
                escape(diff.a_dtype or "—"),
                escape(diff.b_dtype or "—"),
                "—" if diff.a_sparsity is None else f"{diff.a_sparsity:.1%}",
                "—" if diff.b_sparsity is None else f"{diff.b_sparsity:.1%}",
            )
        console.print(layers)
        if len(comparison.layers) > 40:
            console.print(f"… {len(comparison.layers) - 40} more layers differ (see --json)")
    console.print(f"{comparison.same_layers} layer(s) identical in both reports")
    for note in comparison.notes:
        console.print(f"note: {note}", style="yellow", markup=False)
