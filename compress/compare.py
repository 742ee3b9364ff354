"""`compress compare A B`: the compressed figures of two reports side by side, with deltas.

Rendering lives in compress/report/gate.py; this module only computes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from compress.check import METRICS, metric_value
from compress.report.schema import SLOWER_THRESHOLD, Report

#: Latency changes smaller than this are timing noise (the same 5% margin as the SLOWER flag).
LATENCY_NOISE = 1 / SLOWER_THRESHOLD - 1


@dataclass(frozen=True)
class CompareRow:
    metric: str
    label: str
    a: float | None
    b: float | None
    delta: float | None  # b - a
    change: float | None  # (b - a) / |a|; None when a is 0 or either is missing
    # which report is better here; None: not comparable, or latency within LATENCY_NOISE
    better: Literal["a", "b", "same"] | None


@dataclass(frozen=True)
class LayerDiff:
    name: str
    a_dtype: str | None
    b_dtype: str | None
    a_sparsity: float | None
    b_sparsity: float | None
    a_params: int | None
    b_params: int | None


@dataclass
class Comparison:
    a: str
    b: str
    a_name: str
    b_name: str
    rows: list[CompareRow]
    layers: list[LayerDiff]  # only the layers that differ (or exist in one report only)
    same_layers: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "a": {"path": self.a, "name": self.a_name},
            "b": {"path": self.b, "name": self.b_name},
            "metrics": [asdict(row) for row in self.rows],
            "layers": [asdict(layer) for layer in self.layers],
            "same_layers": self.same_layers,
            "notes": self.notes,
        }


def compare_files(a_path: str | Path, b_path: str | Path) -> Comparison:
    """Read two reports (ReadError exit 3, UsageError exit 2) and compare them."""
    return compare_reports(Report.read(Path(a_path)), Report.read(Path(b_path)), a_path, b_path)


def compare_reports(
    a: Report, b: Report, a_path: str | Path = "A", b_path: str | Path = "B"
) -> Comparison:
    rows = [_row(key, METRICS[key].label, a, b, METRICS[key].better) for key in METRICS]
    fa, fb = a.fidelity, b.fidelity
    if fa is not None or fb is not None:
        name = (fb or fa).metric  # type: ignore[union-attr]
        rows.append(
            _pair(
                "fidelity",
                f"fidelity ({name})",
                fa.value if fa else None,
                fb.value if fb else None,
                "higher",
            )
        )
    layers, same = _layer_diffs(a, b)
    return Comparison(
        a=str(a_path),
        b=str(b_path),
        a_name=str(a.recipe.get("name", "")),
        b_name=str(b.recipe.get("name", "")),
        rows=rows,
        layers=layers,
        same_layers=same,
        notes=_notes(a, b),
    )


def _row(key: str, label: str, a: Report, b: Report, better: str) -> CompareRow:
    return _pair(key, label, metric_value(a, key), metric_value(b, key), better)


def _pair(key: str, label: str, va: float | None, vb: float | None, better: str) -> CompareRow:
    if va is None or vb is None:
        return CompareRow(key, label, va, vb, None, None, None)
    delta = vb - va
    change = None if va == 0 else delta / abs(va)
    winner: Literal["a", "b", "same"] | None
    if math.isclose(va, vb, rel_tol=1e-12, abs_tol=1e-12):
        winner = "same"
    elif key.startswith("latency_") and change is not None and abs(change) < LATENCY_NOISE:
        winner = None  # within timing noise: neither is faster
    elif (vb < va) == (better == "lower"):
        winner = "b"
    else:
        winner = "a"
    return CompareRow(key, label, va, vb, round(delta, 10), change, winner)


def _layer_diffs(a: Report, b: Report) -> tuple[list[LayerDiff], int]:
    la = {layer.name: layer for layer in a.layers}
    lb = {layer.name: layer for layer in b.layers}
    names = list(lb) + [name for name in la if name not in lb]
    diffs, same = [], 0
    for name in names:
        x, y = la.get(name), lb.get(name)
        if (
            x is not None
            and y is not None
            and (x.dtype, x.params) == (y.dtype, y.params)
            and abs(x.sparsity - y.sparsity) < 1e-6
        ):
            same += 1
            continue
        diffs.append(
            LayerDiff(
                name=name,
                a_dtype=x.dtype if x else None,
                b_dtype=y.dtype if y else None,
                a_sparsity=x.sparsity if x else None,
                b_sparsity=y.sparsity if y else None,
                a_params=x.params if x else None,
                b_params=y.params if y else None,
            )
        )
    return diffs, same


def _notes(a: Report, b: Report) -> list[str]:
    notes = []
    if a.framework != b.framework:
        notes.append(f"different frameworks: {a.framework} vs {b.framework}")
    if (a.baseline.size_bytes, a.baseline.params) != (b.baseline.size_bytes, b.baseline.params):
        notes.append(
            "the reports start from different baseline models "
            f"({a.baseline.params:,} vs {b.baseline.params:,} params): deltas mix both changes"
        )
    ea, eb = a.environment, b.environment
    if a.compressed.latency_ms and b.compressed.latency_ms:
        where_a, where_b = (ea.cpu, ea.device, ea.threads), (eb.cpu, eb.device, eb.threads)
        if where_a != where_b:
            notes.append(
                "latency was measured on different machines or settings "
                f"({ea.cpu}, {ea.device}, {ea.threads} thread(s) vs {eb.cpu}, {eb.device}, "
                f"{eb.threads} thread(s)): compare it with care"
            )
    return notes
