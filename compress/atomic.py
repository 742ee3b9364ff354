"""Text files in and out: atomic writes (readers see the old file or the complete new one,
never a partial one) and reads that fail with the documented exit codes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from compress.errors import ReadError, UsageError


def _default_mode() -> int:
    """The mode a plain `open(..., "w")` gives a new file: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).chmod(_default_mode())  # mkstemp makes 0600; other outputs get 0644
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def refuse_overwriting(target: Path, inputs: dict[str, str | Path | None], what: str) -> None:
    """UsageError (exit 2) when `target` is one of the files a command reads (`inputs`: kind ->
    path): writing `what` there would destroy the input."""
    resolved = target.resolve()
    for kind, path in inputs.items():
        if path is not None and Path(path).resolve() == resolved:
            raise UsageError(f"refusing to write {what} over the {kind} {path} (an input)")


def write_text_or_fail(path: Path, text: str, kind: str = "") -> None:
    """Atomic write; an OS error is a UsageError (exit 2) naming the file (and its kind)."""
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        what = f"{kind} {path}" if kind else str(path)
        raise UsageError(f"cannot write {what}: {exc.strerror or exc}") from None


def read_text_or_fail(path: Path | str, kind: str) -> str:
    """A UTF-8 file's text: missing/unreadable -> ReadError (exit 3), not text -> UsageError
    (exit 2). `kind` names the file in messages ("report", "budget file")."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReadError(f"{path}: no such {kind}") from None
    except IsADirectoryError:
        raise ReadError(f"{path}: is a directory, not a {kind}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not a {kind} (not UTF-8 text: {exc.reason})") from None
    except OSError as exc:
        raise ReadError(f"{path}: cannot read {kind}: {exc.strerror or exc}") from None
