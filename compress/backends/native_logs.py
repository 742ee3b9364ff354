"""Native libraries (TensorFlow's C++ start-up, CUDA probing, torchao's kernel libraries) log
straight to file descriptor 2, ignoring TF_CPP_MIN_LOG_LEVEL before absl is initialized. While
they load, stderr is captured and replayed without those lines, so the user's own messages
still show. Python-level chatter of libraries the toolkit calls (exporters, converters,
quantizers) is silenced with `quiet_library` / `quiet_loggers`."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] )"
)
#: Python loggers of libraries that a builder imports indirectly and that warn about their own
#: set-up: torchao (imported by transformers when installed) probing CUDA kernel libraries on a
#: CPU machine, and torch's pytree deprecations that torchao's import triggers.
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Capture fd 2 for the duration, then write back every line that is not native log noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture, quiet_loggers(*_NOISY_LOGGERS):
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line
                for line in capture.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not _NOISE.match(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


@contextlib.contextmanager
def discarded_native_output() -> Iterator[None]:
    """File descriptors 1 and 2 go to /dev/null for the duration: for a trial whose failure the
    toolkit handles itself (the TorchScript exporter prints its whole IR graph from C++ when it
    fails, thousands of lines, before raising)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with Path(os.devnull).open("wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.ERROR) -> Iterator[None]:
    """Python loggers `names` show only records of `level` and above for the duration."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def quiet_library(*loggers: str) -> Iterator[None]:
    """A library call that prints progress, warnings and log lines (exporters, converters): its
    Python-level stdout, stderr and warnings are dropped and `loggers` stay silent, errors
    too: a failure reaches the user as the toolkit's own message, which says what was being
    done (COMPRESS_DEBUG=1 lets the libraries' error lines through). The toolkit reports what
    matters (exporter used, opset, parity) itself."""
    level = logging.ERROR if os.environ.get("COMPRESS_DEBUG") == "1" else logging.CRITICAL + 1
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        quiet_loggers(*loggers, level=level),
    ):
        warnings.simplefilter("ignore")
        yield
