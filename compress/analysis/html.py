"""analysis.html: one self-contained page (the report's style, charts as inline SVG images): per
pass, a chart of drop vs level with one line per layer (a heatmap when there are many), or the
nodes' bars for quantize, then the full table; drops in the unit of analysis.json's
`drop_unit` (compress/units.py) in every chart and table."""

from __future__ import annotations

from html import escape

import numpy as np

import compress.units as units
from compress.analysis.cells import node_cells, node_columns
from compress.analysis.schema import Analysis, PassAnalysis
from compress.report.html import CSS, image_tag
from compress.report.plots import new_figure, short_label, style_axes, to_svg
from compress.units import Unit

#: Above this many layers the chart is a heatmap (lines would be unreadable).
LINE_CHART_LAYERS = 12
#: Rows in a heatmap or node chart: the most sensitive ones (the table has them all).
CHART_ROWS = 40


def render_analysis(analysis: Analysis) -> str:
    unit = analysis.drop_unit
    sections = "".join(_section(item, unit) for item in analysis.passes)
    skipped = "".join(
        f"<li>pass {item['index'] + 1} ({escape(item['type'])}): {escape(item['why'])}</li>"
        for item in analysis.skipped
    )
    score = (
        f"; baseline {analysis.metric} {units.shown(score_unit(unit), analysis.baseline_score)}"
        if analysis.baseline_score is not None
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Sensitivity: {escape(analysis.recipe['name'])}</title>"
        f"<style>{CSS}</style></head><body><main>"
        f"<h1>Sensitivity: {escape(analysis.recipe['name'])}</h1>"
        f'<p class="sub">{escape(analysis.framework)} model; drop in {escape(analysis.measure)} '
        f"({escape(_unit_words(unit))}, positive: worse) on {analysis.samples} val samples"
        f"{escape(score)}; each layer, group or node changed alone; "
        f"{units.shown('s', analysis.seconds)} on {escape(analysis.environment['cpu'])}</p>"
        f"{sections}"
        + (f"<h2>Not scanned</h2><ul>{skipped}</ul>" if skipped else "")
        + "</main></body></html>\n"
    )


def score_unit(drop_unit: Unit) -> Unit:
    """The unit of the metric whose drops are in `drop_unit`: a share for points."""
    return "fraction" if drop_unit == "points" else "score"


def _unit_words(unit: Unit) -> str:
    return "percentage points" if unit == "points" else "in the metric's own units"


def _section(item: PassAnalysis, unit: Unit) -> str:
    title = f"Pass {item.index + 1}: {item.type} ({item.method})"
    if item.kind == "nodes":
        chart, table = _node_chart(item, unit), _node_table(item, unit)
        caption = (
            f"Fully quantized drop {units.shown(unit, item.full_drop or 0.0)}. Bars: the drop "
            "with the node alone quantized, and how much of the full drop reverting it alone "
            "removes (ranked nodes only)."
        )
    else:
        chart, table = _level_chart(item, unit), _layer_table(item, unit)
        caption = "Drop with the layer (group) alone pruned at each level, one-shot."
    notes = "".join(f"<li>{escape(note)}</li>" for note in item.notes)
    return (
        f'<section id="pass-{item.index + 1}"><h2>{escape(title)}</h2>'
        f"<figure>{image_tag(chart, title)}<figcaption>{escape(caption)}</figcaption></figure>"
        + (f"<ul>{notes}</ul>" if notes else "")
        + table
        + "</section>"
    )


def _level_chart(item: PassAnalysis, unit: Unit) -> str:
    rows, factor = item.layers, units.scale(unit)
    if len(rows) <= LINE_CHART_LAYERS:
        figure = new_figure(8.6, 4.2)
        axes = figure.add_subplot()
        for row in rows:
            levels = [0.0] + [p.level * 100 for p in row.points]
            drops = [0.0] + [p.drop * factor for p in row.points]
            axes.plot(levels, drops, marker="o", markersize=3.5, label=short_label(row.name))
        axes.set_xlabel("level (% of the layer's weights or channels removed)", fontsize=9)
        axes.set_ylabel(units.axis_title("drop", unit), fontsize=9)
        axes.legend(fontsize=8, frameon=False, ncol=2)
        style_axes(axes)
        return to_svg(figure)
    shown = rows[:CHART_ROWS]
    grid = np.array(
        [[p.drop * factor for p in row.points] + [np.nan] * (len(item.levels) - len(row.points))
         for row in shown]
    )  # fmt: skip
    figure = new_figure(8.6, 1.4 + 0.26 * len(shown))
    axes = figure.add_subplot()
    image = axes.imshow(grid, aspect="auto", cmap="magma_r", interpolation="nearest")
    axes.set_xticks(range(len(item.levels)), [f"{level:.0%}" for level in item.levels])
    axes.set_yticks(range(len(shown)), [short_label(row.name) for row in shown], fontsize=7)
    axes.set_xlabel("level (% of the layer's weights or channels removed)", fontsize=9)
    figure.colorbar(image, ax=axes, label=units.axis_title("drop", unit))
    return to_svg(figure)


def _node_chart(item: PassAnalysis, unit: Unit) -> str:
    shown = item.nodes[:CHART_ROWS]
    full, factor = item.full_drop or 0.0, units.scale(unit)
    index = np.arange(len(shown))
    figure = new_figure(8.6, 1.4 + 0.3 * max(len(shown), 1))
    axes = figure.add_subplot()
    alone = [node.alone_drop * factor for node in shown]
    removed = [(full - node.reverted_drop) * factor if node.rank else 0.0 for node in shown]
    axes.barh(index - 0.2, alone, height=0.4, color="#9333ea", label="drop, quantized alone")
    axes.barh(
        index + 0.2, removed, height=0.4, color="#2563eb", label="drop removed by reverting it"
    )
    axes.set_yticks(index, [short_label(node.name) for node in shown], fontsize=7)
    axes.invert_yaxis()
    if not any(alone + removed):  # nothing to draw: an axis of the unit, not of rounding
        axes.set_xlim(0, 1)
    axes.set_xlabel(units.axis_title("drop", unit), fontsize=9)
    axes.legend(fontsize=8, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    style_axes(axes)
    return to_svg(figure)


def _layer_table(item: PassAnalysis, unit: Unit) -> str:
    head = "".join(
        f'<th class="num">{escape(units.titled(f"at {level:.0%}", unit))}</th>'
        for level in item.levels
    )
    body = ""
    for row in item.layers:
        cells = {p.level: p.drop for p in row.points}
        values = "".join(
            f'<td class="num">{units.number(unit, cells[level])}</td>'
            if level in cells
            else "<td>–</td>"
            for level in item.levels
        )
        body += f'<tr><td>{escape(row.name)}</td><td class="num">{row.size:,}</td>{values}</tr>'
    return (
        '<table><tr><th>layer (most sensitive first)</th><th class="num">size</th>'
        f"{head}</tr>{body}</table>"
    )


def _node_table(item: PassAnalysis, unit: Unit) -> str:
    def row(tag: str, cells: list[str]) -> str:
        aligned = ["" if i in (1, 2) else ' class="num"' for i in range(len(cells))]
        return (
            "<tr>"
            + "".join(
                f"<{tag}{align}>{escape(cell)}</{tag}>"
                for align, cell in zip(aligned, cells, strict=True)
            )
            + "</tr>"
        )

    body = "".join(row("td", node_cells(item, node, unit)) for node in item.nodes)
    return f"<table>{row('th', node_columns(unit))}{body}</table>"
