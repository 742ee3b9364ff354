"""Peak resident memory of one stretch of work in this process.

On Linux the kernel's high-water mark (VmHWM) is reset by writing "5" to /proc/self/clear_refs,
so each stretch gets its own peak. Elsewhere (or where that file is not writable) the only
peak is getrusage's, which never resets: a stretch's growth then shows only where it passes
every earlier peak of the process, and the figure says so in a note.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import re
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class PeakMemory:
    """`start()` before the work, `growth()` after: the peak resident bytes the work added to
    what the process held when it started."""

    def __init__(self) -> None:
        self.before = 0
        self.note: str | None = None

    def start(self) -> None:
        _release_freed_memory()
        try:
            _CLEAR_REFS.write_text("5")
            self.before = _status_kib("VmRSS") * 1024
            self.note = None
        except OSError:
            self.before = _rusage_peak()
            self.note = (
                "peak_rss_bytes from getrusage's peak (this system cannot reset the peak per "
                "model): it counts only memory above every earlier peak of the process"
            )

    def growth(self) -> int:
        peak = _rusage_peak() if self.note else _status_kib("VmHWM") * 1024
        return max(0, peak - self.before)


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the kernel (glibc's malloc_trim):
    memory a previous model freed would otherwise be reused without showing as growth."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise OSError(f"{_STATUS} has no {field}")
    return int(match.group(1))


def _rusage_peak() -> int:
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
