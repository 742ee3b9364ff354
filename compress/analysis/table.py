"""The terminal summary of `compress analyze`: per pass, the most and least sensitive layers,
groups or nodes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

import compress.units as units
from compress.analysis.cells import node_cells, node_columns
from compress.analysis.schema import Analysis, PassAnalysis

#: Rows shown at each end of the ranking.
SHOWN = 5


def print_analysis(analysis: Analysis, directory: str, console: Console | None = None) -> None:
    console = console or Console()
    for item in analysis.passes:
        console.print(_table(analysis, item))
        for note in item.notes:
            console.print(f"note: {note}", style="yellow", markup=False)
    for item in analysis.skipped:
        console.print(f"pass {item['index'] + 1} ({item['type']}) not scanned: {item['why']}")
    console.print(f"analysis: {directory}/analysis.json, analysis.html", markup=False)


def _ends(rows: list) -> list[tuple[int, object]]:
    """The first and last SHOWN rows with their rank (all of them when few)."""
    ranked = list(enumerate(rows, 1))
    if len(ranked) <= 2 * SHOWN:
        return ranked
    return [*ranked[:SHOWN], (0, None), *ranked[-SHOWN:]]


def _table(analysis: Analysis, item: PassAnalysis) -> Table:
    unit = analysis.drop_unit
    title = f"pass {item.index + 1}: {item.type} {item.method} — drop in {analysis.measure}"
    table = Table(title=title, title_justify="left")
    if item.kind == "nodes":
        for column in node_columns(unit):
            left = column in ("node", "op")
            table.add_column(column, justify="left" if left else "right", overflow="fold")
        for _, node in _ends(item.nodes):
            if node is None:
                table.add_row("…", *[""] * (len(table.columns) - 1))
                continue
            table.add_row(*node_cells(item, node, unit))
        table.caption = f"fully quantized drop {units.shown(unit, item.full_drop or 0.0)}"
        return table
    table.add_column("rank", justify="right")
    table.add_column("layer" if item.kind == "weights" else "group", overflow="fold")
    table.add_column("size", justify="right")
    for level in item.levels:
        table.add_column(units.titled(f"{level:.0%}", unit), justify="right")
    for rank, row in _ends(item.layers):
        if row is None:
            table.add_row("…", *[""] * (2 + len(item.levels)))
            continue
        cells = {p.level: units.number(unit, p.drop) for p in row.points}
        table.add_row(
            str(rank), row.name, f"{row.size:,}", *[cells.get(level, "–") for level in item.levels]
        )
    return table
