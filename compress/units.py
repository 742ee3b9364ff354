"""Byte sizes with units ("200kB", "1.5 MiB") as used in recipes and budgets."""

from __future__ import annotations

import re

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
