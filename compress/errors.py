"""Errors the toolkit raises on purpose, each carrying the CLI exit code it maps to.

Exit codes (documented in README.md):
  0 success; 1 a budget failed; 2 bad usage or invalid recipe; 3 the model failed to load,
  train, export or measure.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BUDGET = 1
EXIT_USAGE = 2
EXIT_MODEL = 3


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
