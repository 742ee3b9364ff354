"""report.md: a compact summary for pull-request comments (kept well under 64 KB)."""

from __future__ import annotations

from compress.report.rows import comparison_rows
from compress.report.schema import Report

MAX_LAYER_ROWS = 40


def render_markdown(report: Report) -> str:
    lines = [
        f"# compress report: {report.recipe.get('name', '')}",
        "",
        f"Framework `{report.framework}`, compress {report.tool_version}, "
        f"onnxruntime {report.environment.onnxruntime} on {report.environment.device} "
        f"({report.environment.threads} thread(s)).",
        "",
        "| metric | baseline | compressed | change |",
        "|---|---:|---:|---:|",
    ]
    for row in comparison_rows(report):
        mark = " ⚠" if row.flag else ""
        lines.append(f"| {row.metric} | {row.baseline} | {row.compressed} | {row.change}{mark} |")
    if report.budgets:
        lines += ["", "## Budgets", "", "| metric | limit | value | status |", "|---|---|---:|---|"]
        lines += [f"| {b.metric} | {b.limit} | {b.value} | {b.status} |" for b in report.budgets]
    lines += ["", "## Passes", ""]
    for record in report.passes:
        details = ", ".join(
            f"{key}={value}"
            for key, value in record.items()
            if key not in ("type", "layers", "training") and not isinstance(value, dict | list)
        )
        lines.append(f"- `{record['type']}` ({details})")
    if report.layers:
        lines += [
            "",
            "## Layers",
            "",
            "| layer | params | sparsity | dtype |",
            "|---|---:|---:|---|",
        ]
        for layer in report.layers[:MAX_LAYER_ROWS]:
            lines.append(
                f"| {layer.name} | {layer.params:,} | {layer.sparsity:.1%} | {layer.dtype} |"
            )
        if len(report.layers) > MAX_LAYER_ROWS:
            lines.append(f"| … {len(report.layers) - MAX_LAYER_ROWS} more in report.json | | | |")
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"
