"""tuning.html: the trials of one `compress tune` run (the report's style): a chart of each
trial's level against its accuracy drop, passing and failing apart, and the trial table."""

from __future__ import annotations

from html import escape

from compress.report.html import CSS, image_tag
from compress.report.plots import new_figure, style_axes, to_svg
from compress.tuning.trials import Trial, Tuning

COLORS = {"pass": "#15803d", "fail": "#b91c1c", "error": "#6b7280"}


def render_tuning(tuning: Tuning) -> str:
    best = tuning.best_trial
    verdict = (
        f"best: trial {best.index}, level {best.level:.2%} (achieved {best.achieved or 0:.2%})"
        if best
        else "no trial met every budget"
    )
    if tuning.interrupted:
        verdict += " — interrupted"
    budgets = ", ".join(f"{name} {limit}" for name, limit in tuning.budgets.items())
    rows = "".join(_row(trial, best) for trial in tuning.trials)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Tuning: {escape(tuning.recipe['name'])}</title><style>{CSS}</style></head>"
        f"<body><main><h1>Tuning: {escape(tuning.recipe['name'])}</h1>"
        f'<p class="sub">{len(tuning.trials)} trial(s) in {tuning.seconds:.0f} s; budgets: '
        f"{escape(budgets)}; {escape(verdict)}</p>"
        f"<figure>{image_tag(_chart(tuning), 'level vs accuracy drop per trial')}"
        "<figcaption>Each trial's overall level and accuracy drop (green: every budget met)."
        "</figcaption></figure>"
        '<h2>Trials</h2><table><tr><th>#</th><th>why</th><th class="num">level</th>'
        '<th class="num">achieved</th><th class="num">predicted drop</th>'
        '<th class="num">accuracy drop</th><th class="num">size (gzip)</th><th>result</th>'
        f"<th>seconds</th></tr>{rows}</table>"
        + (f"<p>Tuned recipe: <code>{escape(tuning.tuned)}</code></p>" if tuning.tuned else "")
        + "</main></body></html>\n"
    )


def _row(trial: Trial, best: Trial | None) -> str:
    figures = trial.figures
    drop = figures.get("accuracy_drop")
    size = figures.get("size_gzip_bytes")
    result = trial.status + (f": {'; '.join(trial.failed)}" if trial.failed else "")
    result += f": {trial.error}" if trial.error else ""
    mark = " ★" if best is not None and trial.index == best.index else ""
    return (
        f"<tr><td>{trial.index}{mark}</td><td>{escape(trial.why)}</td>"
        f'<td class="num">{trial.level:.2%}</td>'
        f'<td class="num">{"" if trial.achieved is None else f"{trial.achieved:.2%}"}</td>'
        f'<td class="num">{trial.predicted_drop:.4f}</td>'
        f'<td class="num">{"" if drop is None else f"{drop:.4f}"}</td>'
        f'<td class="num">{"" if size is None else f"{size:,.0f}"}</td>'
        f"<td>{escape(result)}</td><td>{trial.seconds:.1f}</td></tr>"
    )


def _chart(tuning: Tuning) -> str:
    figure = new_figure(8.6, 3.6)
    axes = figure.add_subplot()
    for status, color in COLORS.items():
        chosen = [t for t in tuning.trials if t.status == status]
        xs = [(t.achieved or t.level) * 100 for t in chosen]
        ys = [(t.figures.get("accuracy_drop") or 0.0) * 100 for t in chosen]
        axes.scatter(xs, ys, color=color, label=status, zorder=3)
        for trial, x, y in zip(chosen, xs, ys, strict=True):
            axes.annotate(str(trial.index), (x, y), textcoords="offset points", xytext=(4, 4))
    limit = tuning.budgets.get("accuracy_drop", {}).get("max")
    if limit is not None:
        axes.axhline(limit * 100, color="#b45309", linestyle="--", label="accuracy_drop max")
    axes.set_xlabel("overall level (% of the targeted weights or channels removed)", fontsize=9)
    axes.set_ylabel("accuracy drop (points)", fontsize=9)
    axes.legend(fontsize=8, frameon=False)
    style_axes(axes)
    return to_svg(figure)
