"""The side-by-side table printed after `compress apply`."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from compress.report.rows import budget_lines, comparison_rows
from compress.report.schema import Report


def print_table(report: Report, console: Console | None = None) -> None:
    """Print baseline vs compressed, budgets and notes."""
    console = console or Console()
    title = f"{report.recipe.get('name', '')} ({report.framework})"
    table = Table(title=title, title_justify="left")
    for column in ("metric", "baseline", "compressed", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in comparison_rows(report):
        style = "bold red" if row.flag else None
        table.add_row(row.label, row.baseline, row.compressed, row.change, style=style)
    console.print(table)
    for budget in budget_lines(report):
        color = {"pass": "green", "fail": "red"}.get(budget.status, "yellow")
        note = f" — {escape(budget.note)}" if budget.note else ""
        console.print(
            f"budget {budget.metric} {escape(budget.limit)}: {escape(budget.value)} "
            f"[{color}]{budget.status}[/]{note}"
        )
    for note in report.notes:
        console.print(f"note: {note}", style="yellow", markup=False)
    console.print(f"report: {report.artifacts.report_json}", markup=False)
