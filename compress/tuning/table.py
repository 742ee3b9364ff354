"""The terminal summary of `compress tune`: one row per trial, the best marked."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from compress.tuning.trials import Tuning


def print_tuning(tuning: Tuning, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"tuning {tuning.recipe['name']}", title_justify="left")
    for column in ("#", "why", "level", "achieved", "accuracy drop", "gzip bytes", "result"):
        table.add_column(column, justify="left" if column in ("why", "result") else "right")
    for trial in tuning.trials:
        drop, size = trial.figures.get("accuracy_drop"), trial.figures.get("size_gzip_bytes")
        mark = "*" if trial.index == tuning.best else ""
        table.add_row(
            f"{trial.index}{mark}",
            trial.why,
            f"{trial.level:.2%}",
            "" if trial.achieved is None else f"{trial.achieved:.2%}",
            "" if drop is None else f"{drop:.4f}",
            "" if size is None else f"{size:,.0f}",
            trial.status if not trial.failed else f"fail: {'; '.join(trial.failed)}",
        )
    console.print(table)
    best = tuning.best_trial
    if best is not None:
        console.print(
            f"best: trial {best.index}, level {best.level:.2%} (achieved "
            f"{best.achieved or 0:.2%}); tuned recipe: {tuning.tuned}",
            markup=False,
        )
