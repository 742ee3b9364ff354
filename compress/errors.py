"""Errors the toolkit raises on purpose, each carrying the CLI exit code it maps to.

Exit codes (documented in README.md):
  0 success; 1 a budget failed; 2 bad usage, invalid recipe, invalid report or budget file;
  3 the model failed to load, train, export or measure, or (`check`, `compare`) an input file
  cannot be read.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUDGET = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_READ = 3  # `compress check` / `compare`: a report or budget file cannot be read


class CompressError(Exception):
    """Base class: a one-line, user-facing message and an exit code."""

    exit_code = EXIT_MODEL


class UsageError(CompressError):
    """Bad usage: invalid arguments, unwritable output, unsafe paths."""

    exit_code = EXIT_USAGE


class RecipeError(UsageError):
    """An invalid recipe; the message starts with file:line:col where that is known."""


class ModelError(CompressError):
    """The model failed to load, train, compress, export or measure."""

    exit_code = EXIT_MODEL


class UnsafeModelError(ModelError):
    """A model file would run code when loaded and the recipe did not say to trust it."""


class ReadError(CompressError):
    """An input file (a report, a budget file) does not exist or cannot be read."""

    exit_code = EXIT_READ


class InternalError(CompressError):
    """Something the toolkit did not expect (a bug, or a library that changed): the message
    says what was being done, to what, and the cause in one line."""

    exit_code = EXIT_MODEL


def message_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none
    (frameworks' messages run over many lines)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def first_line(exc: BaseException) -> str:
    """ "TypeName: first line of the message"."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def unexpected(exc: Exception, doing: str) -> InternalError:
    """An InternalError for an exception nobody anticipated, while `doing` something."""
    return InternalError(
        f"unexpected failure while {doing} ({first_line(exc)}); this is a bug in compress or an "
        "incompatible library version: please report it (COMPRESS_DEBUG=1 shows the traceback)"
    )
