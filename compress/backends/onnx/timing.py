"""Quick interleaved latency comparisons of ONNX files, for decisions made while compressing
(which nodes stay float for speed, which exporter's graph is faster); the report's own latency
figures come from compress.measure.latency."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.backends.onnx.runtime import make_session, timer

#: Seconds of timed inferences spent on one comparison, split over its files.
BUDGET_S = 0.6
MIN_RUNS, MAX_RUNS, WARMUP = 8, 200, 3


@dataclass(frozen=True)
class Timing:
    """Inputs and threads to time ONNX files with (one inference of batch `inputs`)."""

    inputs: list[np.ndarray]
    threads: int = 1

    def p50_ms(self, paths: dict[str, Path]) -> dict[str, float]:
        """Median latency of each file in ms, runs interleaved in alternating order so that
        drifts of the machine hit every file alike."""
        runs = {
            label: timer(make_session(path, self.threads), self.inputs, "cpu")
            for label, path in paths.items()
        }
        first = {label: min(run() for _ in range(WARMUP)) for label, run in runs.items()}
        count = int(BUDGET_S * 1000.0 / max(sum(first.values()), 1e-3))
        count = min(MAX_RUNS, max(MIN_RUNS, count))
        times: dict[str, list[float]] = {label: [] for label in runs}
        order = list(runs)
        for round_ in range(count):
            for label in order if round_ % 2 == 0 else reversed(order):
                times[label].append(runs[label]())
        return {label: float(np.median(values)) for label, values in times.items()}

    def ratio(self, candidate: Path, reference: Path) -> float:
        """candidate's p50 / reference's p50 (below 1: candidate is faster)."""
        p50 = self.p50_ms({"candidate": candidate, "reference": reference})
        return p50["candidate"] / max(p50["reference"], 1e-9)
