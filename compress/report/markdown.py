"""report.md: a compact summary for pull-request comments, always under 64 KB (GitHub's comment
limit is 65,536 characters): at most MAX_LAYER_ROWS layers, long names shortened, and a final
cut if a report is still too large (report.json and report.html hold everything)."""

from __future__ import annotations

from compress.report.rows import comparison_rows, layer_channels
from compress.report.schema import Report

MAX_LAYER_ROWS = 40
#: The most bytes report.md may take (UTF-8), leaving room under GitHub's 65,536 limit.
MAX_BYTES = 60_000
_MAX_CELL = 80
_MAX_DETAILS = 400


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
            f"| {b.metric} | {_cell(b.limit)} | {b.value} | {b.status} |" for b in report.budgets
        ]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {_cell(note, 600)}" for note in report.notes]
    lines += ["", "## Passes", ""]
    for record in report.passes:
        details = ", ".join(
            f"{key}={value}"
            for key, value in record.items()
            if key not in ("type", "layers", "training") and not isinstance(value, dict | list)
        )
        lines.append(f"- `{_cell(record.get('type', ''))}` ({_cell(details, _MAX_DETAILS)})")
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
