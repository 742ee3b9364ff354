"""The side-by-side rows shared by the terminal table, the Markdown report and the HTML cards:
one per table metric of the catalogue (compress/metrics.py) that the report measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compress.metrics import LATENCY_NOISE, METRICS, Metric
from compress.report.schema import SLOWER_THRESHOLD, Layer, Report
from compress.units import format_size


@dataclass(frozen=True)
class Row:
    """One metric as the report shows it: its figures formatted, and raw (for exact tables)."""

    metric: Metric
    label: str
    baseline: str
    compressed: str
    change: str
    before: float | None  # the baseline figure (None for a figure about the pair)
    after: float
    flag: bool = False  # the compressed model is worse here in a way the user must see
    # good: the compressed figure is better; bad: worse; "": the same, or within timing noise
    trend: Literal["good", "bad", ""] = ""


def comparison_rows(report: Report) -> list[Row]:
    """Baseline vs compressed for every table metric; a figure of both models only when both
    were measured, a figure about the pair (fidelity) when it was."""
    rows = []
    for metric in METRICS.values():
        before, after = metric.figure(report, "baseline"), metric.value(report)
        if not metric.table or after is None:
            continue
        label = metric.label_for(report)
        if not metric.paired:
            rows.append(Row(metric, label, "", _shown(metric, after), "", None, after))
        elif before is not None:
            change, flag = _change(metric, before, after)
            rows.append(
                Row(
                    metric,
                    label,
                    _shown(metric, before),
                    _shown(metric, after),
                    change,
                    before,
                    after,
                    flag,
                    _trend(metric, before, after),
                )
            )
    return rows


def _shown(metric: Metric, value: float) -> str:
    if metric.unit == "bytes":
        return format_size(value)
    if metric.unit == "count":
        return f"{int(value):,}"
    if metric.unit == "fraction":
        return f"{value:.{metric.decimals}%}"
    if metric.unit == "ms":
        return f"{value:.3f} ms"
    return f"{value:.4f}"


def _change(metric: Metric, before: float, after: float) -> tuple[str, bool]:
    """The change column (ratio, points or speed-up) and whether it is flagged."""
    if metric.unit in ("fraction", "score"):
        return f"{(after - before) * 100:+.{metric.decimals}f} pts", False
    if metric.unit == "ms":
        speedup = before / after if after else float("inf")
        text = f"{speedup:.2f}x faster" if speedup >= 1 else f"{1 / speedup:.2f}x slower"
        return text, metric.flag_slower and speedup < SLOWER_THRESHOLD
    return ("n/a" if before == 0 else f"{after / before:.2f}x"), False


def _trend(metric: Metric, before: float, after: float) -> Literal["good", "bad", ""]:
    if metric.noisy:
        speedup = before / after if after > 0 else 1.0
        if abs(speedup - 1) <= LATENCY_NOISE:
            return ""
        return "good" if speedup > 1 else "bad"
    if after == before:
        return ""
    return "good" if (after < before) == (metric.better == "lower") else "bad"


def layer_channels(layer: Layer) -> str:
    """A layer's output channels: "64", "64 → 48" where the baseline had others, "—" unknown."""
    after, before = layer.channels, layer.baseline_channels
    if after is None:
        return "—"
    return f"{before} → {after}" if before is not None and before != after else str(after)
