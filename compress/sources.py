"""Resolve "file.py:callable" and "pkg.module:callable" references from recipes."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from compress.errors import ModelError, first_line


def load_callable(reference: str, base_dir: Path) -> Callable[..., Any]:
    """Import the callable named by a reference; files are relative to base_dir.

    A callable from a file runs with the file's folder on sys.path, as a script would: a builder
    may import its neighbours inside the function too, not only at the top of the file.
    """
    module_part, sep, attr = reference.rpartition(":")
    if not sep or not module_part or not attr:
        raise ModelError(
            f"{reference!r} is not of the form 'file.py:callable' or 'pkg.mod:callable'"
        )
    folder = None
    if module_part.endswith(".py"):
        path = (base_dir / module_part).resolve()
        module, folder = _import_file(path), path.parent
    else:
        try:
            module = importlib.import_module(module_part)
        except Exception as exc:
            raise ModelError(f"cannot import {module_part!r}: {first_line(exc)}") from exc
    target: Any = module
    for name in attr.split("."):
        target = getattr(target, name, None)
        if target is None:
            raise ModelError(
                f"{module_part} defines no {attr!r}; {_defined_callables(module, module_part)}"
            )
    if not callable(target):
        raise ModelError(f"{reference}: {attr!r} is not callable")
    return target if folder is None else _running_in(folder, target)


def _defined_callables(module: Any, shown_as: str) -> str:
    """What a module defines that a reference could name: its own public functions and
    classes (not what it imports), for the message about a name it lacks."""
    names = sorted(
        name
        for name, value in vars(module).items()
        if callable(value)
        and not name.startswith("_")
        and getattr(value, "__module__", None) == module.__name__
    )
    if not names:
        return f"{shown_as} defines no public function or class"
    return f"the callables it defines: {', '.join(names)}"


def call_reference(reference: str, base_dir: Path, *args: Any, **kwargs: Any) -> Any:
    """Load and call a referenced callable; its exceptions become one-line ModelErrors."""
    function = load_callable(reference, base_dir)
    try:
        return function(*args, **kwargs)
    except Exception as exc:
        raise ModelError(f"{reference} raised {first_line(exc)}") from exc


def _running_in(folder: Path, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, called with `folder` on sys.path."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _on_sys_path(folder):
            return function(*args, **kwargs)

    return wrapper


@contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    """Put `folder` first on sys.path, and take that entry out again afterwards."""
    entry = str(folder)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        if entry in sys.path:  # the function may have edited sys.path itself
            sys.path.remove(entry)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise ModelError(f"no such file: {path}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"compress_user_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Let a builder import its neighbours (e.g. models/digits.py from models/digits_cnn.py).
    try:
        with _on_sys_path(path.parent):
            spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ModelError(f"importing {path.name} failed: {first_line(exc)}") from exc
    return module
