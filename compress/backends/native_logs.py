"""Native libraries (TensorFlow's C++ start-up, CUDA probing) log straight to file descriptor 2,
ignoring TF_CPP_MIN_LOG_LEVEL before absl is initialized. While they load, stderr is captured and
replayed without those lines, so the user's own messages still show."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\] )"
)


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Capture fd 2 for the duration, then write back every line that is not native log noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
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
