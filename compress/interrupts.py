"""Ctrl-C (SIGINT) and SIGTERM end a command wherever they land, with exit 130 or 143.

Python raises KeyboardInterrupt where the signal lands; a library that catches broad
exceptions (an exporter trying its capture strategies, an import machinery wrapping the
error) can turn it into an ordinary failure, and a fallback would then carry on. So the
signal is also remembered: `check()` raises it again at every stage and before every
fallback, and the CLI maps any failure after a signal to the signal's exit code. Because the
signal is an exception, `finally` blocks run: staging folders are removed, nothing is
published (SIGTERM included, which would otherwise kill the process on the spot).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM arrived; `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


def handle_signals() -> None:
    """Raise `Interrupted` on SIGINT and SIGTERM (from the main thread; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    sys.unraisablehook = _quiet_unraisable


def _quiet_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """A signal landing where Python cannot raise (a garbage-collection callback) is printed
    as "Exception ignored in ..." with a traceback; it is remembered and raised again by
    `check()`, so nothing is printed for it. Other unraisable errors print as before."""
    if not isinstance(unraisable.exc_value, Interrupted):
        sys.__unraisablehook__(unraisable)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def check() -> None:
    """Raise `Interrupted` again when a signal arrived (a library may have swallowed it)."""
    if _received:
        raise Interrupted(_received[-1])


def acknowledge() -> None:
    """Forget the signals so far: a command that stops on purpose at an interrupt (`compress
    tune` keeps its best trial) finishes its own way."""
    _received.clear()


def received_exit_code() -> int | None:
    """128 + the last signal received, or None."""
    return 128 + _received[-1] if _received else None
