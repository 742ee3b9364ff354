"""The trial table of `compress tune`, for the terminal and tuning.html: one row per trial, the
best marked, every figure in its unit."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

import compress.units as units
from compress.metrics import METRICS, RELATIVE_DROP
from compress.tuning.trials import Trial, Tuning, quality_lost


def drop_unit(tuning: Tuning) -> tuple[str, units.Unit]:
    """The name and unit of what trials lost: a perplexity's relative increase, else the
    accuracy drop in the evaluate metric's unit."""
    if tuning.evaluate_metric in RELATIVE_DROP:
        return "increase", "fraction"
    return "drop", METRICS["accuracy_drop"].unit_for(tuning.evaluate_metric)


def trial_columns(tuning: Tuning) -> list[str]:
    name, unit = drop_unit(tuning)
    drop = units.titled(name, unit)
    asked = (
        ["algorithm", "block", "8-bit nodes"]
        if tuning.search == "widths"
        else ["level", "achieved", f"predicted {drop}"]
    )
    size = "size" if tuning.search == "widths" else "size (gzip)"
    quality = "perplexity" if tuning.evaluate_metric in RELATIVE_DROP else "accuracy"
    return ["#", "why", *asked, f"{quality} {drop}", size, "result", "seconds"]


def trial_cells(tuning: Tuning, trial: Trial) -> list[str]:
    _, unit = drop_unit(tuning)
    drop = quality_lost(trial)
    size = trial.figures.get("size_bytes" if tuning.search == "widths" else "size_gzip_bytes")
    result = trial.status + (f": {'; '.join(trial.failed)}" if trial.failed else "")
    result += f": {trial.error}" if trial.error else ""
    if trial.widths is not None:
        nodes = trial.widths["int8_nodes"]
        asked = [trial.widths["algorithm"], str(trial.widths["block_size"]), str(len(nodes))]
    else:
        asked = [
            units.shown("fraction", trial.level),
            "" if trial.achieved is None else units.shown("fraction", trial.achieved),
            units.number(unit, trial.predicted_drop),
        ]
    return [
        f"{trial.index}{' ★' if trial.index == tuning.best else ''}",
        trial.why,
        *asked,
        "" if drop is None else units.number(unit, drop),
        "" if size is None else units.shown("bytes", size),
        result,
        units.shown("s", trial.seconds),
    ]


def verdict(tuning: Tuning) -> str:
    best = tuning.best_trial
    if best is None:
        text = "no trial met every budget"
    elif best.widths is not None:
        text = (
            f"best: trial {best.index}, {best.widths['algorithm']} at block "
            f"{best.widths['block_size']}, {len(best.widths['int8_nodes'])} node(s) at 8 bits"
        )
    else:
        text = (
            f"best: trial {best.index}, level {units.shown('fraction', best.level)} (achieved "
            f"{units.shown('fraction', best.achieved or 0)})"
        )
    return text + (" — interrupted" if tuning.interrupted else "")


def print_tuning(tuning: Tuning, console: Console | None = None) -> None:
    """The trials without the predicted drop and the seconds (tuning.html has them)."""
    console = console or Console()
    table = Table(title=f"tuning {tuning.recipe['name']}", title_justify="left")
    columns = trial_columns(tuning)
    hidden = ("seconds", "why") if tuning.search == "widths" else ("seconds",)  # why: as asked
    shown = [i for i, c in enumerate(columns) if not c.startswith("predicted") and c not in hidden]
    for i in shown:
        table.add_column(columns[i], justify="left" if columns[i] in ("why", "result") else "right")
    for trial in tuning.trials:
        cells = trial_cells(tuning, trial)
        table.add_row(*[cells[i] for i in shown])
    console.print(table)
    if tuning.best_trial is not None:
        console.print(f"{verdict(tuning)}; tuned recipe: {tuning.tuned}", markup=False)
