"""report.md: a compact summary for pull-request comments, always under 64 KB (GitHub's comment
limit is 65,536 characters): at most MAX_LAYER_ROWS layers, long names shortened, and a final
cut if a report is still too large (report.json and report.html hold everything)."""

from __future__ import annotations

from compress.report.records import Cell, Names, RecordTable, pass_views
from compress.report.rows import budget_lines, comparison_rows, layer_channels
from compress.report.schema import Report

MAX_LAYER_ROWS = 40
#: Rows of a pass record's table (channel groups, placement search...) report.md shows.
MAX_RECORD_ROWS = 20
#: The most bytes report.md may take (UTF-8), leaving room under GitHub's 65,536 limit.
MAX_BYTES = 60_000
_MAX_CELL = 80
_MAX_FACT = 600


def _cell(text: object, limit: int = _MAX_CELL) -> str:
    """Table-safe text: pipes escaped, newlines removed, shortened from the middle."""
    value = str(text).replace("\n", " ").replace("|", "\\|")
    if len(value) > limit:
        keep = (limit - 1) // 2
        value = value[:keep] + "…" + value[-keep:]
    return value


def render_markdown(report: Report) -> str:
    lines = [
        f"# compress report: {_cell(report.recipe.get('name', ''))}",
        "",
        f"Framework `{report.framework}`, compress {report.tool_version}, "
        f"onnxruntime {report.environment.onnxruntime} on {report.environment.device} "
        f"({report.environment.threads} thread(s)), CPU {_cpu(report)}.",
        "",
        "| metric | baseline | compressed | change |",
        "|---|---:|---:|---:|",
    ]
    for row in comparison_rows(report):
        mark = " ⚠" if row.flag else ""
        lines.append(
            f"| {_cell(row.label)} | {row.baseline} | {row.compressed} | {row.change}{mark} |"
        )
    if report.budgets:
        lines += ["", "## Budgets", "", "| metric | limit | value | status |", "|---|---|---:|---|"]
        lines += [
            f"| {b.metric} | {_cell(b.limit)} | {b.value} | {b.status}"
            + (f" — {_cell(b.note)}" if b.note else "")
            + " |"
            for b in budget_lines(report)
        ]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {_cell(note, 600)}" for note in report.notes]
    lines += ["", "## Passes"]
    for view in pass_views(report):
        lines += ["", f"### {_cell(view.title)}", ""]
        lines += [f"- {label}: {_cell(_names(value), _MAX_FACT)}" for label, value in view.facts]
        for table in view.tables:
            lines += _record_table(table)
    if report.layers:
        lines += [
            "",
            "## Layers",
            "",
            "| layer | params | channels | sparsity | dtype |",
            "|---|---:|---:|---:|---|",
        ]
        for layer in report.layers[:MAX_LAYER_ROWS]:
            lines.append(
                f"| {_cell(layer.name)} | {layer.params:,} | {layer_channels(layer)} | "
                f"{layer.sparsity:.1%} | {_cell(layer.dtype, 20)} |"
            )
        if len(report.layers) > MAX_LAYER_ROWS:
            lines.append(
                f"| … {len(report.layers) - MAX_LAYER_ROWS} more in report.json and report.html "
                "| | | | |"
            )
    return _fit("\n".join(lines) + "\n")


def _names(value: Cell) -> str:
    """A list of names in full when short, else how many (report.html lists them)."""
    if not isinstance(value, Names):
        return value
    text = ", ".join(value.items)
    if not text or len(text) > _MAX_CELL:
        return value.summary + (" (listed in report.html)" if text else "")
    return text


def _record_table(table: RecordTable) -> list[str]:
    lines = [
        "",
        f"{table.title}:",
        "",
        "| " + " | ".join(_cell(column) for column in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    for row in table.rows[:MAX_RECORD_ROWS]:
        lines.append("| " + " | ".join(_cell(_names(cell)) for cell in row) + " |")
    if len(table.rows) > MAX_RECORD_ROWS:
        more = len(table.rows) - MAX_RECORD_ROWS
        lines.append(f"| … {more} more in report.html |" + " |" * (len(table.columns) - 1))
    return lines


def _fit(text: str) -> str:
    """Cut at a line boundary if the text is over MAX_BYTES (a last resort: rows are capped)."""
    if len(text.encode("utf-8")) <= MAX_BYTES:
        return text
    marker = "\n… (cut to stay under 64 KB; see report.json and report.html)\n"
    budget = MAX_BYTES - len(marker.encode("utf-8"))
    kept = text.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return kept[: kept.rfind("\n")] + marker


def _cpu(report: Report) -> str:
    """The CPU and the features its INT8 speed depends on (older reports: the name only)."""
    env = report.environment
    return (
        f"{env.cpu} ({', '.join(env.cpu_features) or 'no AVX2'})"
        if env.cpu_features is not None
        else env.cpu
    )
