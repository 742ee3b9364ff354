"""Progress and notes on stderr. Off when stderr is not a terminal, with --json/--no-progress,
or when CI=true; stdout stays free for tables and JSON."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import compress.interrupts as interrupts


def progress_wanted(requested: bool | None = None) -> bool:
    """Resolve the progress setting: explicit value, else on for an interactive stderr."""
    if requested is not None:
        return requested
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return False
    return sys.stderr.isatty()


#: Terminal colour and cursor codes (ESC [ ... letter) inside a library's message.
ANSI_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Reporter:
    """Shows stages, bars and notes on stderr when enabled; notes are kept either way."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.notes: list[str] = []
        self.current = "starting"

    def stage(self, message: str) -> None:
        """A one-line stage marker ("exporting baseline"); kept as `current` for error messages."""
        interrupts.check()
        self.current = message
        if self.enabled:
            self.console.print(f"[bold cyan]>[/] {message}")

    def note(self, message: str) -> None:
        """Something the user should know; it is also recorded in the report (without the
        terminal colour codes a library's message may carry)."""
        interrupts.check()
        message = ANSI_CODES.sub("", message)
        self.notes.append(message)
        if self.enabled:
            self.console.print(f"[yellow]note:[/] {message}")

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable]:
        """A progress bar; yields `advance(n=1, **fields)`."""
        if not self.enabled:
            yield lambda n=1, **fields: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total, status="")

            def advance(n: int = 1, **fields: str) -> None:
                progress.update(task, advance=n, **fields)

            yield advance
