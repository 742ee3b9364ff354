"""Units: byte sizes ("200kB", "1.5 MiB") and percentages as recipes and budgets write them, and
how every figure is shown to people, once for every view (see `Unit`)."""

from __future__ import annotations

import math
import re
from typing import Literal

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_FRACTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse_size(value: int | float | str) -> int:
    """Return a size in bytes; numbers are bytes, strings may carry kB/MB/GB/KiB/MiB/GiB."""
    if isinstance(value, bool):
        raise ValueError("a size must be a number of bytes or a string such as '200kB'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return int(value)
    match = _SIZE.match(value)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"invalid size {value!r}; use bytes or a unit: kB, MB, GB, KiB, MiB, GiB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(num_bytes: float) -> str:
    """Human-readable size in decimal units (kB = 1000 bytes), as budgets are written."""
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if abs(num_bytes) >= factor:
            return f"{num_bytes / factor:.1f} {unit}"
    return f"{int(num_bytes)} B"


def parse_fraction(value: int | float | str) -> float:
    """A non-negative fraction: "2%" -> 0.02, "0.5 %" -> 0.005; a plain number is already a
    fraction (0.02 means 2%)."""
    if isinstance(value, bool):
        raise ValueError("a percentage must be a number or a string such as '2%'")
    if isinstance(value, int | float):
        if value < 0 or value != value:
            raise ValueError("a percentage cannot be negative")
        return float(value)
    match = _FRACTION.match(value)
    if not match:
        raise ValueError(f"invalid percentage {value!r}; write it as '2%' or as a fraction 0.02")
    number = float(match.group(1))
    return number / 100 if match.group(2) else number


def format_percent(fraction: float) -> str:
    """0.02 -> "2%", 0.015 -> "1.5%" (as budget files are written)."""
    return f"{fraction * 100:g}%"


#: How a figure is stored and shown. report.json and the other JSON files hold plain numbers in
#: the first form; every view for people (terminal, Markdown, HTML, charts) shows the second.
#: bytes: 37106 -> "37.1 kB" (exact: "37,106 B"); count: 7755 -> "7,755"; fraction, a share
#: (sparsity, accuracy, a level): 0.7974 -> "79.74%"; points, a difference of shares (an accuracy
#: drop, a change of sparsity): 0.0028 -> "0.28 pts" (percentage points); score, a figure without
#: a unit (cosine, mse, a custom metric): "0.9749"; ms: "0.042 ms"; s: "94.9 s"; per_s, a rate
#: (decode tokens per second): "812.4 /s".
Unit = Literal["bytes", "count", "fraction", "points", "score", "ms", "s", "per_s"]

#: What follows a figure, and a column title ("drop (pts)"); counts and scores have none.
SUFFIXES: dict[str, str] = {
    "bytes": "B",
    "fraction": "%",
    "points": "pts",
    "ms": "ms",
    "s": "s",
    "per_s": "/s",
}
#: How a chart axis names the unit.
_AXIS_NAMES = {**SUFFIXES, "bytes": "bytes", "points": "percentage points"}


def scale(unit: Unit) -> float:
    """The factor from the stored figure to the shown number (100 for shares and points)."""
    return 100.0 if unit in ("fraction", "points") else 1.0


def titled(name: str, unit: Unit) -> str:
    """A column title that names its unit: "drop (pts)", "latency (ms)"; a score: the name."""
    suffix = SUFFIXES.get(unit)
    return f"{name} ({suffix})" if suffix else name


def axis_title(name: str, unit: Unit) -> str:
    """A chart axis title: "drop (percentage points)"."""
    words = _AXIS_NAMES.get(unit)
    return f"{name} ({words})" if words else name


def number(unit: Unit, value: float, decimals: int = 2) -> str:
    """The figure without its unit, for a column whose title names it: 0.4023 points -> "40.23",
    37106 bytes -> "37,106", 0.042 ms -> "0.042"."""
    if unit in ("bytes", "count"):
        return f"{round(value):,}"
    if unit in ("fraction", "points"):
        return f"{value * 100:.{decimals}f}"
    if unit == "ms":
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"
    if unit in ("s", "per_s"):
        return f"{value:,.1f}"
    tiny = value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5)
    return f"{value:.3g}" if tiny else f"{value:.4f}"


def shown(unit: Unit, value: float | None, decimals: int = 2) -> str:
    """The figure as people read it, with its unit: "37.1 kB", "7,755", "79.74%", "0.28 pts",
    "0.042 ms", "94.9 s", "0.9749"; "—" when not measured."""
    if value is None:
        return "—"
    if unit == "bytes":
        return format_size(value)
    text = number(unit, value, decimals)
    if unit == "fraction":
        return text + "%"
    return f"{text} {SUFFIXES[unit]}" if unit in SUFFIXES else text


def exact(unit: Unit, value: float | None) -> str:
    """The figure as check, compare and budget tables show it, beside a limit: every byte
    ("37,106 B"; a 2% gate on a small file needs them), counts, ms, shares and points to four
    decimals of a percent ("1.1142 pts" fails "max 1.00 pts" visibly)."""
    if value is None:
        return "—"
    if unit == "bytes":
        return f"{round(value):,} B"
    return shown(unit, value, 4)


def signed(unit: Unit, delta: float, decimals: int = 2) -> str:
    """A difference with its sign and unit: "+0.28 pts", "-13.1 kB", "+0.012 ms", "+20"; the
    difference of two shares is in points."""
    unit = "points" if unit == "fraction" else unit
    return ("-" if delta < 0 else "+") + shown(unit, abs(delta), decimals)


def limit(unit: Unit, value: float) -> str:
    """A budget's threshold in its figure's unit, as few digits as it was written with:
    "2,000 B", "100", "0.1 ms", "1.00 pts", "75.00%"."""
    if unit == "bytes":
        return f"{round(value):,} B"
    if unit in ("fraction", "points"):
        scaled = value * 100
        two = math.isclose(round(scaled, 2), scaled, abs_tol=1e-9)
        text = f"{scaled:.2f}" if two else f"{scaled:g}"
    else:
        whole = unit == "count" and float(value).is_integer()
        text = f"{value:,.0f}" if whole else f"{value:g}"
    if unit == "fraction":
        return text + "%"
    return f"{text} {SUFFIXES[unit]}" if unit in SUFFIXES else text
