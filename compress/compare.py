"""`compress compare A B`: read two reports and compare them (compress/report/compare.py)."""

from __future__ import annotations

from pathlib import Path

from compress.report.compare import Comparison, compare_reports
from compress.report.schema import Report


def compare_files(a_path: str | Path, b_path: str | Path) -> Comparison:
    """Read two reports (ReadError exit 3, UsageError exit 2) and compare them."""
    return compare_reports(Report.read(Path(a_path)), Report.read(Path(b_path)), a_path, b_path)
