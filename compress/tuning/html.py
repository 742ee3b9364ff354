"""tuning.html: the trials of one `compress tune` run (the report's style): a chart of each
trial's level against its accuracy drop, passing and failing apart, and the trial table."""

from __future__ import annotations

from html import escape

import compress.units as units
from compress.metrics import METRICS, budget_text
from compress.report.html import CSS, image_tag
from compress.report.plots import new_figure, style_axes, to_svg
from compress.tuning.table import drop_unit, trial_cells, trial_columns, verdict
from compress.tuning.trials import Trial, Tuning, quality_lost

COLORS = {"pass": "#15803d", "fail": "#b91c1c", "error": "#6b7280"}


def render_tuning(tuning: Tuning) -> str:
    budgets = "; ".join(
        budget_text(name, bounds, tuning.evaluate_metric) for name, bounds in tuning.budgets.items()
    )
    columns = trial_columns(tuning)
    rows = "".join(_row("td", columns, trial_cells(tuning, trial)) for trial in tuning.trials)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Tuning: {escape(tuning.recipe['name'])}</title><style>{CSS}</style></head>"
        f"<body><main><h1>Tuning: {escape(tuning.recipe['name'])}</h1>"
        f'<p class="sub">{len(tuning.trials)} trial(s) in {units.shown("s", tuning.seconds)}; '
        f"budgets: {escape(budgets)}; {escape(verdict(tuning))}</p>"
        f"<figure>{image_tag(_chart(tuning), f'{_x_title(tuning)} vs accuracy drop')}"
        f"<figcaption>Each trial's {_x_title(tuning)} and accuracy drop (green: every budget "
        "met).</figcaption></figure>"
        f"<h2>Trials</h2><table>{_row('th', columns, columns)}{rows}</table>"
        + (f"<p>Tuned recipe: <code>{escape(tuning.tuned)}</code></p>" if tuning.tuned else "")
        + "</main></body></html>\n"
    )


def _row(tag: str, columns: list[str], cells: list[str]) -> str:
    """A table row, figures aligned right."""
    aligned = ["" if c in ("#", "why", "result") else ' class="num"' for c in columns]
    return (
        "<tr>"
        + "".join(f"<{tag}{a}>{escape(c)}</{tag}>" for a, c in zip(aligned, cells, strict=True))
        + "</tr>"
    )


def _chart(tuning: Tuning) -> str:
    name, unit = drop_unit(tuning)
    budget = "perplexity_increase" if name == "increase" else "accuracy_drop"
    factor = units.scale(unit)
    figure = new_figure(8.6, 3.6)
    axes = figure.add_subplot()
    for status, color in COLORS.items():
        chosen = [t for t in tuning.trials if t.status == status]
        xs = [_x(t) for t in chosen]
        ys = [(quality_lost(t) or 0.0) * factor for t in chosen]
        axes.scatter(xs, ys, color=color, label=status, zorder=3)
        for trial, x, y in zip(chosen, xs, ys, strict=True):
            axes.annotate(str(trial.index), (x, y), textcoords="offset points", xytext=(4, 4))
    limit = tuning.budgets.get(budget, {}).get("max")
    if limit is not None:
        label = budget_text(budget, {"max": limit}, tuning.evaluate_metric)
        axes.axhline(limit * factor, color="#b45309", linestyle="--", label=label)
    axes.set_xlabel(
        "file size (MB)"
        if tuning.search == "widths"
        else "overall level (% of the targeted weights or channels removed)",
        fontsize=9,
    )
    axes.set_ylabel(units.axis_title(METRICS[budget].label, unit), fontsize=9)
    axes.legend(fontsize=8, frameon=False)
    style_axes(axes)
    return to_svg(figure)


def _x_title(tuning: Tuning) -> str:
    return "file size" if tuning.search == "widths" else "overall level"


def _x(trial: Trial) -> float:
    """Where a trial sits on the chart: its file in MB (width search), else its level in %."""
    if trial.widths is not None:
        return (trial.figures.get("size_bytes") or 0.0) / 1e6
    return (trial.achieved or trial.level) * 100
