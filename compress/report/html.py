"""report.html: one self-contained page (inline CSS, charts embedded as base64 SVG, no script,
no external URL) that reads offline: summary cards, budgets, charts (size, per-layer sparsity,
latency distribution, channels before/after for channel pruning), the layer table with dtypes,
what each pass did as tables, the environment and the recipe."""

from __future__ import annotations

import base64
import json
from html import escape

import yaml

import compress.units as units
from compress.report import plots
from compress.report.records import Cell, Names, RecordTable, pass_views
from compress.report.rows import Row, budget_lines, comparison_rows, layer_channels
from compress.report.schema import Layer, Report

#: Layer tables longer than this are folded in a <details> element (all rows are still there).
FOLD_LAYERS = 60
#: Pass record tables longer than this are folded the same way.
FOLD_RECORD_ROWS = 20
#: Names lists up to this long are shown inline, longer ones folded.
INLINE_NAMES = 3
#: The per-layer sparsity chart is left out of a channel-pruned report when no layer's sparsity
#: rose by this much (the zeros INT8 rounding leaves are not what the pass did).
SPARSITY_CHART_GAIN = 0.05

CSS = """
:root { --ink:#1f2937; --muted:#6b7280; --line:#e5e7eb; --card:#f8fafc; --blue:#2563eb;
  --green:#15803d; --red:#b91c1c; --amber:#b45309; --cyan:#0e7490; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
  sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 22px 0 8px; }
h4 { font-size: 13px; margin: 14px 0 6px; color: var(--muted); font-weight: 600; }
.sub { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.card .value { font-size: 22px; font-weight: 600; margin: 2px 0; }
.card .base { color: var(--muted); font-size: 12.5px; }
.card .change { font-weight: 600; font-size: 13px; }
.card .change.good { color: var(--green); }
.card .change.bad { color: var(--red); }
.card.flag { border-color: var(--red); background: #fef2f2; }
.card.flag .change { color: var(--red); }
.charts { display: grid; grid-template-columns: 1fr; gap: 18px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 6px; }
.row2 { display: grid; grid-template-columns: minmax(0, 5fr) minmax(0, 4fr); gap: 18px;
  align-items: start; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
table.kv th { width: 230px; }
.side table + table { margin-top: 14px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--card); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; }
pre { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px; overflow: auto; }
.status { font-weight: 600; border-radius: 4px; padding: 1px 7px; font-size: 12px; }
.status.pass { color: var(--green); background: #dcfce7; }
.status.fail { color: var(--red); background: #fee2e2; }
.status.warn { color: var(--amber); background: #fef3c7; }
.status.new { color: var(--cyan); background: #cffafe; }
.dtype { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px;
  padding: 1px 6px; border-radius: 4px; background: #eef2ff; }
.dtype.q { background: #fae8ff; }
.notes li { margin: 3px 0; }
.notes li.slower { color: var(--red); font-weight: 600; }
.bar { display: inline-block; height: 8px; background: var(--blue); border-radius: 2px;
  vertical-align: middle; margin-right: 6px; }
details summary { cursor: pointer; color: var(--blue); margin: 6px 0; }
footer { color: var(--muted); font-size: 12px; margin-top: 36px; }
@media (max-width: 820px) { .row2 { grid-template-columns: 1fr; } }
"""


def render_html(report: Report) -> str:
    """The whole page as one string."""
    name = report.recipe.get("name", "") or "report"
    env = report.environment
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>compress report: {escape(name)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>compress report: {escape(name)}</h1>",
        f'<p class="sub">Framework <b>{escape(report.framework)}</b> · compress '
        f"{escape(report.tool_version)} · onnxruntime {escape(env.onnxruntime)} on "
        f"{escape(str(env.device or 'cpu'))}, {escape(str(env.threads))} thread(s) · "
        "every figure measured on the exported ONNX files in the same run</p>",
        _cards(report),
        _budgets(report),
        _notes(report),
        _charts(report),
        _layers(report),
        _passes(report),
        _environment(report),
        _recipe(report),
        f"<footer>report.json schema_version {report.schema_version} · generated by compress "
        f"{escape(report.tool_version)}</footer>",
        "</main></body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _cards(report: Report) -> str:
    cards = [_card(row) for row in comparison_rows(report) if row.metric.card]
    return '<section id="summary"><div class="cards">' + "".join(cards) + "</div></section>"


def _card(row: Row) -> str:
    """A figure, green when the compressed model is better, red when worse (latency within
    the timing noise and unchanged figures get no colour), outlined when flagged."""
    flag = " flag" if row.flag else ""
    base = f"baseline {escape(row.baseline)}" if row.baseline else "compressed vs baseline"
    change = f'<div class="change {row.trend}">{escape(row.change)}</div>' if row.change else ""
    return (
        f'<div class="card{flag}"><div class="label">{escape(row.label)}</div>'
        f'<div class="value">{escape(row.compressed)}</div>'
        f'<div class="base">{base}</div>{change}</div>'
    )


def _status(status: str) -> str:
    return f'<span class="status {escape(status)}">{escape(status)}</span>'


def _budgets(report: Report) -> str:
    if not report.budgets:
        return ""
    rows = "".join(
        f"<tr><td>{escape(b.metric)}</td><td>{escape(b.limit)}</td>"
        f'<td class="num">{escape(b.value)}</td><td>{_status(b.status)}'
        f"{f' — {escape(b.note)}' if b.note else ''}</td></tr>"
        for b in budget_lines(report)
    )
    return (
        '<section id="budgets"><h2>Budgets</h2><table><thead><tr><th>metric</th><th>limit</th>'
        f'<th class="num">value</th><th>status</th></tr></thead><tbody>{rows}</tbody></table>'
        "</section>"
    )


def _notes(report: Report) -> str:
    if not report.notes:
        return ""
    items = "".join(
        f'<li class="{"slower" if note.startswith("SLOWER") else ""}">{escape(note)}</li>'
        for note in report.notes
    )
    return f'<section id="notes"><h2>Notes</h2><ul class="notes">{items}</ul></section>'


def image_tag(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}">'


def _figure(chart_id: str, svg: str, alt: str, caption: str) -> str:
    return (
        f'<figure id="{chart_id}">{image_tag(svg, alt)}<figcaption>{caption}</figcaption></figure>'
    )


def _charts(report: Report) -> str:
    base, comp = report.baseline, report.compressed
    size = _figure(
        "chart-size",
        plots.size_chart(report),
        "file size, raw and gzip, baseline vs compressed",
        "File size of the ONNX file (plus any external-data files), raw and gzip -6; the ratio "
        "inside a bar is compressed / baseline. Unstructured sparsity shrinks the gzip size only.",
    )
    speed = ""
    if report.speedup:
        speed = (
            f" p50 speed-up {report.speedup['p50']:.2f}x, p90 {report.speedup['p90']:.2f}x "
            "(baseline / compressed; below 1 is slower)."
        )
    latency_svg = plots.latency_chart(report)
    if latency_svg is None:
        latency = (
            '<figure id="chart-latency"><figcaption>Latency was not measured '
            "(measure.latency: null).</figcaption></figure>"
        )
    else:
        runs = comp.latency_ms.runs if comp.latency_ms else 0
        recorded = (
            "Cumulative distribution of every timed run (warm-up discarded, runs of both models "
            "interleaved; rare slow outliers beyond the axis are counted in the legend)"
            if (comp.latency_ms and comp.latency_ms.samples)
            else "This report has no per-run samples (written by an older version): p50 and p90 "
            "only"
        )
        latency = _figure(
            "chart-latency",
            latency_svg,
            "latency distribution with p50 and p90 marked",
            f"{recorded}; {runs} runs, dashed lines at p50 and p90.{escape(speed)}",
        )
    per_layer = _channels(report)
    gained = max((_gain(layer) for layer in report.layers), default=0.0)
    whole = " → ".join(units.shown("fraction", side.sparsity, 1) for side in (base, comp))
    if not per_layer or gained >= SPARSITY_CHART_GAIN:
        per_layer += _figure(
            "chart-sparsity",
            plots.sparsity_chart(report),
            "per-layer sparsity, baseline vs compressed",
            f"Share of zero weights per layer ({len(report.layers)} layers; compressed bars "
            f"coloured by the layer's dtype). Whole file: {whole} (biases included).",
        )
    else:
        per_layer += (
            '<p class="sub">Per-layer sparsity is not charted: no layer gained '
            f"{units.shown('points', SPARSITY_CHART_GAIN, 0)} of zero weights (at most "
            f"{units.signed('points', gained)}; whole file {whole}); the layer table has every "
            "figure.</p>"
        )
    return (
        '<section id="charts"><h2>Charts</h2><div class="charts">'
        f'<div class="row2">{size}{_side_tables(report)}</div>{latency}{per_layer}</div></section>'
    )


def _gain(layer: Layer) -> float:
    return layer.sparsity - (layer.baseline_sparsity or 0.0)


def _channels(report: Report) -> str:
    """The channels chart, when a pass changed any layer's output channels."""
    svg = plots.channels_chart(report)
    if svg is None:
        return ""
    known = [layer for layer in report.layers if layer.channels is not None]
    cut = [layer for layer in known if layer.baseline_channels not in (None, layer.channels)]
    before = sum(layer.baseline_channels or layer.channels or 0 for layer in known)
    after = sum(layer.channels or 0 for layer in known)
    params = f"{report.baseline.params:,} → {report.compressed.params:,}"
    return _figure(
        "chart-channels",
        svg,
        "output channels per layer, baseline vs compressed",
        f"Output channels (Conv filters, MatMul/Gemm output features) per layer: {len(cut)} of "
        f"{len(known)} layers cut, {before:,} → {after:,} channels in all; params {params}. "
        "Removed channels are gone from the file, so they save MACs, size and time.",
    )


def _side_tables(report: Report) -> str:
    """Exact sizes and latency figures beside the size chart."""
    base, comp = report.baseline, report.compressed
    sizes = "".join(
        f"<tr><td>{escape(row.metric.side_label or row.label)}</td>"
        f"<td class='num'>{int(row.before):,}</td><td class='num'>{int(row.after):,}</td>"
        f"<td class='num'>{_ratio(row.before, row.after)}</td></tr>"
        for row in comparison_rows(report)
        if row.unit in ("bytes", "count") and row.before is not None
    )
    tables = [
        "<table><thead><tr><th>bytes / count</th><th class='num'>baseline</th>"
        "<th class='num'>compressed</th><th class='num'>ratio</th></tr></thead>"
        f"<tbody>{sizes}</tbody></table>"
    ]
    rows = []
    for label, stats in (("baseline", base.latency_ms), ("compressed", comp.latency_ms)):
        if stats is None:
            continue
        figures = "".join(
            f"<td class='num'>{units.number('ms', value)}</td>"
            for value in (stats.p50, stats.p90, stats.mean)
        )
        rows.append(f"<tr><td>{label}</td>{figures}<td class='num'>{stats.runs:,}</td></tr>")
    if rows:
        tables.append(
            "<table><thead><tr><th>latency (ms)</th><th class='num'>p50</th>"
            "<th class='num'>p90</th><th class='num'>mean</th><th class='num'>runs</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    return f'<div class="side">{"".join(tables)}</div>'


def _ratio(before: float, after: float) -> str:
    return "n/a" if before == 0 else f"{after / before:.3f}x"


def _layers(report: Report) -> str:
    if not report.layers:
        return ""
    body = []
    for layer in report.layers:
        quantized = " q" if layer.dtype.startswith(("int", "uint")) else ""
        before = "—" if layer.baseline_sparsity is None else f"{layer.baseline_sparsity:.1%}"
        width = max(0.0, min(1.0, layer.sparsity)) * 60
        body.append(
            f"<tr><td><code>{escape(layer.name)}</code></td>"
            f'<td><span class="dtype{quantized}">{escape(layer.dtype)}</span></td>'
            f'<td class="num">{layer.params:,}</td>'
            f'<td class="num">{escape(layer_channels(layer))}</td><td class="num">{before}</td>'
            f'<td class="num"><span class="bar" style="width:{width:.0f}px"></span>'
            f"{layer.sparsity:.1%}</td></tr>"
        )
    table = (
        '<table id="layer-table"><thead><tr><th>layer</th><th>dtype</th>'
        '<th class="num">params</th><th class="num">channels</th>'
        '<th class="num">baseline sparsity</th>'
        f'<th class="num">sparsity</th></tr></thead><tbody>{"".join(body)}</tbody></table>'
    )
    dtypes: dict[str, int] = {}
    for layer in report.layers:
        dtypes[layer.dtype] = dtypes.get(layer.dtype, 0) + 1
    summary = ", ".join(f"{count} {escape(dtype)}" for dtype, count in dtypes.items())
    if len(report.layers) > FOLD_LAYERS:
        table = f"<details><summary>show all {len(report.layers)} layers</summary>{table}</details>"
    return (
        f'<section id="layers"><h2>Layers</h2><p class="sub">{len(report.layers)} weight '
        f"matrices / kernels: {summary}.</p>{table}</section>"
    )


def _value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _passes(report: Report) -> str:
    views = pass_views(report)
    if not views:
        return ""
    items = []
    for view in views:
        facts = "".join(
            f"<tr><th>{escape(label)}</th><td>{_cell(value)}</td></tr>"
            for label, value in view.facts
        )
        tables = "".join(_record_table(table) for table in view.tables)
        items.append(f'<h3>{escape(view.title)}</h3><table class="kv">{facts}</table>{tables}')
    return '<section id="passes"><h2>Passes</h2>' + "".join(items) + "</section>"


def _cell(value: Cell) -> str:
    """A cell's text; a long list of names folded under its count."""
    if not isinstance(value, Names):
        return escape(value)
    names = ", ".join(escape(name) for name in value.items)
    if len(value.items) <= INLINE_NAMES:
        return names or "none"
    return f"<details><summary>{escape(value.summary)}</summary>{names}</details>"


def _record_table(table: RecordTable) -> str:
    head = "".join(f"<th>{escape(column)}</th>" for column in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    )
    html = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if len(table.rows) > FOLD_RECORD_ROWS:
        html = f"<details><summary>show all {len(table.rows)} rows</summary>{html}</details>"
    return f"<h4>{escape(table.title)}</h4>{html}"


def _environment(report: Report) -> str:
    env = report.environment.model_dump(exclude_none=True)
    rows = [
        (key, ", ".join(value) if isinstance(value, list) else value) for key, value in env.items()
    ]
    for label in ("baseline", "compressed"):
        export = getattr(report, label).export
        if export is not None:
            rows.append(
                (
                    f"{label} export",
                    f"{export.exporter}, opset {export.opset}, parity max abs diff "
                    f"{export.parity_max_abs_diff:.3g}",
                )
            )
    if report.fidelity is not None:
        extra = (
            ""
            if report.fidelity.max_abs_error is None
            else f", max abs error {report.fidelity.max_abs_error:.4g}"
        )
        rows.append(("fidelity", f"{report.fidelity.metric} {report.fidelity.value:.4f}{extra}"))
    body = "".join(
        f"<tr><th>{escape(str(key))}</th><td>{escape(_value(value))}</td></tr>"
        for key, value in rows
    )
    return (
        f'<section id="environment"><h2>Environment</h2><table class="kv">{body}</table></section>'
    )


def _recipe(report: Report) -> str:
    spec = report.recipe.get("spec")
    text = (
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=None)
        if isinstance(spec, dict)
        else json.dumps(report.recipe, indent=2)
    )
    path = report.recipe.get("path")
    where = f'<p class="sub">{escape(str(path))}</p>' if path else ""
    return f'<section id="recipe"><h2>Recipe</h2>{where}<pre>{escape(text)}</pre></section>'
