"""Whether a latency of one run differs from another run's by more than timing noise, for
`compress compare` and `compress check --baseline`.

Each run timed its baseline beside its compressed model (interleaved), so when both reports
start from the same baseline model, B's latency is judged relative to its own baseline: a
machine that got faster or slower moves both, the model's speed moves one. A difference is noise
when it is under LATENCY_NOISE of that, or not larger than the spread the runs measured (p90 - p50
of either compressed model): a p50 is not known better than its run's spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import compress.units as units
from compress.metrics import LATENCY_NOISE, Metric
from compress.report.schema import Report


@dataclass(frozen=True)
class Timing:
    """B's timing against A's: `ratio` B / A (below 1: B is faster), relative to each run's own
    baseline when both timed the same baseline model; whether the difference is `noise`; and
    `why`, said beside the figures ("" when the plain ratio is clearly a difference)."""

    ratio: float
    noise: bool
    why: str = ""


def compare_timing(metric: Metric, a: Report, b: Report) -> Timing | None:
    """How B's timing `metric` compares with A's; None when either run lacks it."""
    va, vb = metric.value(a), metric.value(b)
    if va is None or vb is None or va <= 0 or vb <= 0:
        return None
    ba, bb = metric.figure(a, "baseline"), metric.figure(b, "baseline")
    same = (a.baseline.size_bytes, a.baseline.params) == (b.baseline.size_bytes, b.baseline.params)
    if same and ba and bb and abs(bb / ba - 1) >= LATENCY_NOISE:
        ratio = (vb / bb) / (va / ba)
        moved = f"both runs timed the same baseline, which moved {bb / ba - 1:+.0%}"
        if abs(ratio - 1) < LATENCY_NOISE:
            return Timing(ratio, True, f"timing noise: {moved}, and the compressed model with it")
        return Timing(ratio, False, f"{moved}: B is {ratio:.2f}x A relative to it")
    ratio = vb / va
    if abs(ratio - 1) < LATENCY_NOISE:
        return Timing(ratio, True, f"timing noise: {ratio - 1:+.1%} is under {LATENCY_NOISE:.0%}")
    spreads = [_spread(report) for report in (a, b)]
    if abs(vb - va) <= max(spreads):
        shown = " and ".join(units.shown("ms", s) for s in spreads)
        return Timing(
            ratio,
            True,
            f"timing noise: {units.signed('ms', vb - va)} is within the spread the runs "
            f"measured (p90 - p50: {shown})",
        )
    return Timing(ratio, False)


def _spread(report: Report) -> float:
    latency = report.compressed.latency_ms
    return 0.0 if latency is None else max(0.0, latency.p90 - latency.p50)
