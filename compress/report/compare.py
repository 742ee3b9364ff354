"""Two reports compared: the compressed figures of every catalogue metric side by side with
deltas and which is better, the layers that differ, and notes on what makes them hard to compare.

`compress compare A B` reads the files (compress/compare.py); rendering is in
compress/report/gate.py; this module only computes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from compress.metrics import METRICS, Metric
from compress.report.noise import compare_timing
from compress.report.schema import Report
from compress.units import Unit


@dataclass(frozen=True)
class CompareRow:
    metric: str
    label: str
    a: float | None
    b: float | None
    delta: float | None  # b - a
    change: float | None  # (b - a) / |a|; None when a is 0 or either is missing
    # which report is better here; None: not comparable, or latency within timing noise
    better: Literal["a", "b", "same"] | None
    unit: Unit = "score"  # how the figures are shown (compress/units.py)
    note: str = ""  # how a timing was judged: noise, or against each run's own baseline


@dataclass(frozen=True)
class LayerDiff:
    name: str
    a_dtype: str | None
    b_dtype: str | None
    a_sparsity: float | None
    b_sparsity: float | None
    a_params: int | None
    b_params: int | None
    a_channels: int | None = None
    b_channels: int | None = None


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


def compare_reports(
    a: Report, b: Report, a_path: str | Path = "A", b_path: str | Path = "B"
) -> Comparison:
    """Compare B with A (`a_path` and `b_path` name them in the result)."""
    rows = []
    for metric in METRICS.values():
        va, vb = metric.value(a), metric.value(b)
        # a budget metric always has a row; other figures (fidelity) only when a report has one
        if metric.budget or va is not None or vb is not None:
            rows.append(_row(metric, a, b))
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


def _row(metric: Metric, a: Report, b: Report) -> CompareRow:
    """One metric of A and B: the delta, the change and which report is better (a timing as
    compress/report/noise.py judges it)."""
    key, label, unit = metric.name, metric.label_for(b, a), metric.unit_for(b.evaluate_metric)
    va, vb = metric.value(a), metric.value(b)
    if va is None or vb is None:
        return CompareRow(key, label, va, vb, None, None, None, unit)
    delta = vb - va
    change = None if va == 0 else delta / abs(va)
    timing = compare_timing(metric, a, b) if metric.noisy else None
    winner: Literal["a", "b", "same"] | None
    if math.isclose(va, vb, rel_tol=1e-12, abs_tol=1e-12):
        winner = "same"
    elif timing is not None:
        winner = None if timing.noise else ("b" if timing.ratio < 1 else "a")
    elif (vb < va) == (metric.better == "lower"):
        winner = "b"
    else:
        winner = "a"
    note = timing.why if timing is not None and winner != "same" else ""
    return CompareRow(key, label, va, vb, round(delta, 10), change, winner, unit, note)


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
            and (x.dtype, x.params, x.channels) == (y.dtype, y.params, y.channels)
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
                a_channels=x.channels if x else None,
                b_channels=y.channels if y else None,
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
