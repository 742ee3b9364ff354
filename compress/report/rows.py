"""The side-by-side rows shared by the terminal table and the Markdown report."""

from __future__ import annotations

from dataclasses import dataclass

from compress.report.schema import SLOWER_THRESHOLD, ModelMetrics, Report
from compress.units import format_size


@dataclass(frozen=True)
class Row:
    metric: str
    baseline: str
    compressed: str
    change: str
    flag: bool = False  # the compressed model is worse here in a way the user must see


def _ratio(base: float, new: float) -> str:
    return "n/a" if base == 0 else f"{new / base:.2f}x"


def comparison_rows(report: Report) -> list[Row]:
    base, comp = report.baseline, report.compressed
    rows = [
        Row(
            "size",
            format_size(base.size_bytes),
            format_size(comp.size_bytes),
            _ratio(base.size_bytes, comp.size_bytes),
        ),
        Row(
            "size (gzip)",
            format_size(base.size_gzip_bytes),
            format_size(comp.size_gzip_bytes),
            _ratio(base.size_gzip_bytes, comp.size_gzip_bytes),
        ),
        Row("params", f"{base.params:,}", f"{comp.params:,}", _ratio(base.params, comp.params)),
        Row(
            "nonzero params",
            f"{base.nonzero_params:,}",
            f"{comp.nonzero_params:,}",
            _ratio(base.nonzero_params, comp.nonzero_params),
        ),
        Row(
            "sparsity",
            f"{base.sparsity:.1%}",
            f"{comp.sparsity:.1%}",
            f"{(comp.sparsity - base.sparsity) * 100:+.1f} pts",
        ),
    ]
    rows.extend(_latency_rows(base, comp))
    if base.accuracy is not None and comp.accuracy is not None:
        drop = (comp.accuracy - base.accuracy) * 100
        rows.append(
            Row("accuracy", f"{base.accuracy:.2%}", f"{comp.accuracy:.2%}", f"{drop:+.2f} pts")
        )
    if report.fidelity is not None:
        rows.append(
            Row(f"fidelity ({report.fidelity.metric})", "", f"{report.fidelity.value:.4f}", "")
        )
    return rows


def _latency_rows(base: ModelMetrics, comp: ModelMetrics) -> list[Row]:
    if base.latency_ms is None or comp.latency_ms is None:
        return []
    rows = []
    for key in ("p50", "p90"):
        before, after = getattr(base.latency_ms, key), getattr(comp.latency_ms, key)
        speedup = before / after if after else float("inf")
        rows.append(
            Row(
                f"latency {key}",
                f"{before:.3f} ms",
                f"{after:.3f} ms",
                f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower",
                flag=key == "p50" and speedup < SLOWER_THRESHOLD,
            )
        )
    return rows
