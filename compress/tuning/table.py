"""The trial table of `compress tune`, for the terminal and tuning.html: one row per trial, the
best marked, every figure in its unit."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

import compress.units as units
from compress.metrics import METRICS
from compress.tuning.trials import Trial, Tuning


def trial_columns(tuning: Tuning) -> list[str]:
    drop = units.titled("drop", METRICS["accuracy_drop"].unit_for(tuning.evaluate_metric))
    return [
        "#",
        "why",
        "level",
        "achieved",
        f"predicted {drop}",
        f"accuracy {drop}",
        "size (gzip)",
        "result",
        "seconds",
    ]


def trial_cells(tuning: Tuning, trial: Trial) -> list[str]:
    unit = METRICS["accuracy_drop"].unit_for(tuning.evaluate_metric)
    drop, size = trial.figures.get("accuracy_drop"), trial.figures.get("size_gzip_bytes")
    result = trial.status + (f": {'; '.join(trial.failed)}" if trial.failed else "")
    result += f": {trial.error}" if trial.error else ""
    return [
        f"{trial.index}{' ★' if trial.index == tuning.best else ''}",
        trial.why,
        units.shown("fraction", trial.level),
        "" if trial.achieved is None else units.shown("fraction", trial.achieved),
        units.number(unit, trial.predicted_drop),
        "" if drop is None else units.number(unit, drop),
        "" if size is None else units.shown("bytes", size),
        result,
        units.shown("s", trial.seconds),
    ]


def verdict(tuning: Tuning) -> str:
    best = tuning.best_trial
    text = (
        f"best: trial {best.index}, level {units.shown('fraction', best.level)} (achieved "
        f"{units.shown('fraction', best.achieved or 0)})"
        if best
        else "no trial met every budget"
    )
    return text + (" — interrupted" if tuning.interrupted else "")


def print_tuning(tuning: Tuning, console: Console | None = None) -> None:
    """The trials without the predicted drop and the seconds (tuning.html has them)."""
    console = console or Console()
    table = Table(title=f"tuning {tuning.recipe['name']}", title_justify="left")
    columns = trial_columns(tuning)
    shown = [i for i, c in enumerate(columns) if not c.startswith("predicted") and c != "seconds"]
    for i in shown:
        table.add_column(columns[i], justify="left" if columns[i] in ("why", "result") else "right")
    for trial in tuning.trials:
        cells = trial_cells(tuning, trial)
        table.add_row(*[cells[i] for i in shown])
    console.print(table)
    if tuning.best_trial is not None:
        console.print(f"{verdict(tuning)}; tuned recipe: {tuning.tuned}", markup=False)
