"""Quick interleaved latency comparisons of ONNX files, for decisions made while compressing
(which nodes stay float for speed, which exporter's graph is faster); the report's own latency
figures come from compress.measure.latency.

Decisions must not flip when the machine is busy (CI runners, a second job on the other core),
so comparisons are built from what load disturbs least, as measured on a 2-core KVM guest with
`yes > /dev/null` on the other core (tiny CNNs, 0.07-0.25 ms per inference):

- The clock, with 1 thread: the calling thread's CPU time (`time.thread_time_ns`) around
  `session.run`. With `intra_op_num_threads=1`, `inter_op_num_threads=1` and sequential
  execution onnxruntime creates no worker thread and runs every kernel on the calling thread
  (its thread CPU time equals the process's CPU time over the runs; tests check it), so the
  figure is the inference's own work: time another process takes the core away is not counted.
  Under load its spread (MAD of paired log-ratios) was half that of wall time, e.g. 0.24 vs 0.66
  on a ResNet. With more threads the work runs on onnxruntime's pool as well, whose CPU time
  includes spinning: wall time then, and a stricter majority (`Rule`).
- Paired rounds: each round times candidate and reference back to back (alternating which goes
  first) and keeps their ratio; the comparison is the median of those ratios with a
  distribution-free 95% interval (sign test), i.e. the noise comes from the runs themselves.
  The ratio of each file's own median drifts with the machine's state between runs: under load it
  called a no-op change 4.3% faster (0.957) where the paired median said 1.000 [0.995, 1.005].
- Each comparison loads fresh sessions, so a confirmation also samples session-to-session
  differences (memory layout), which were up to 3% on the same files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from compress.onnx.runtime import make_session

#: Seconds of timed inferences spent on one comparison, split over its files.
BUDGET_S = 0.6
MIN_PAIRS, MAX_PAIRS, WARMUP = 20, 400, 3
#: A clock coarser than this (thread CPU time on some platforms) is not used for decisions.
FINEST_RESOLUTION_S = 1e-6


@dataclass(frozen=True)
class Comparison:
    """Candidate vs reference over paired rounds: `ratio` is the median of candidate/reference
    per round (below 1: candidate is faster), `low`/`high` its 95% interval, `wins` the share
    of rounds the candidate was faster in, `spread` the robust spread of the per-round
    log-ratios (MAD x 1.4826): the noise of this comparison."""

    ratio: float
    low: float
    high: float
    wins: float
    pairs: int
    candidate_ms: float
    reference_ms: float
    spread: float

    @classmethod
    def of(cls, candidate: list[float], reference: list[float]) -> Comparison:
        c, r = np.asarray(candidate), np.asarray(reference)
        logs = np.sort(np.log(np.maximum(c, 1e-9) / np.maximum(r, 1e-9)))
        n = len(logs)
        k = max(0, math.floor((n - 1.96 * math.sqrt(n)) / 2))  # sign-test order statistic
        median = float(np.median(logs))
        return cls(
            ratio=math.exp(median),
            low=math.exp(float(logs[k])),
            high=math.exp(float(logs[n - 1 - k])),
            wins=float(np.mean(c < r)),
            pairs=n,
            candidate_ms=float(np.median(c)),
            reference_ms=float(np.median(r)),
            spread=float(np.median(np.abs(logs - median)) * 1.4826),
        )

    def record(self) -> dict:
        return {
            "ratio": round(self.ratio, 4),
            "ratio_95": [round(self.low, 4), round(self.high, 4)],
            "wins": round(self.wins, 3),
            "pairs": self.pairs,
            "candidate_ms": round(self.candidate_ms, 4),
            "reference_ms": round(self.reference_ms, 4),
            "noise": round(self.spread, 4),
        }


@dataclass(frozen=True)
class Rule:
    """When a candidate counts as faster by at least `min_gain`: the whole 95% interval of its
    paired ratio lies below 1 - min_gain (the gain's lower bound clears it, so a gain that only
    noise puts above the threshold does not count), and it won a clear majority of rounds."""

    min_gain: float
    min_wins: float

    def describe(self) -> str:
        return (
            f"the 95% interval of the paired time ratio lies below {1 - self.min_gain:.2f} and "
            f"the candidate is faster in at least {self.min_wins:.0%} of the rounds"
        )

    def refusal(self, comparison: Comparison) -> str | None:
        """Why `comparison` does not show the candidate faster, or None when it does."""
        limit = 1 - self.min_gain
        if comparison.high >= limit:
            return (
                f"gain not above {self.min_gain:.0%}: 95% interval of the time ratio "
                f"[{comparison.low:.3f}, {comparison.high:.3f}] reaches {limit:.2f}"
            )
        if comparison.wins < self.min_wins:
            return (
                f"faster in {comparison.wins:.0%} of {comparison.pairs} rounds "
                f"(needs {self.min_wins:.0%})"
            )
        return None


@dataclass(frozen=True)
class Timing:
    """Inputs and threads to time ONNX files with (one inference of batch `inputs`)."""

    inputs: list[np.ndarray]
    threads: int = 1

    @property
    def cpu_clock(self) -> bool:
        """Whether runs are timed with the calling thread's CPU time (see the module doc)."""
        resolution = time.get_clock_info("thread_time").resolution
        return self.threads == 1 and resolution <= FINEST_RESOLUTION_S

    @property
    def method(self) -> str:
        """How runs are timed and compared, in words, for the report."""
        plural = "s" if self.threads > 1 else ""
        clock = "thread cpu time" if self.cpu_clock else "wall time"
        return f"{clock}, {self.threads} thread{plural}; paired interleaved rounds, median ratio"

    def rule(self, min_gain: float) -> Rule:
        """The decision rule at `min_gain`: stricter with wall time, which load inflates."""
        return Rule(min_gain, 2 / 3 if self.cpu_clock else 3 / 4)

    def compare(self, candidate: Path, reference: Path) -> Comparison:
        """Paired rounds of candidate and reference, alternating which runs first."""
        runs = self._runs({"candidate": candidate, "reference": reference})
        times = self._interleaved(runs)
        return Comparison.of(times["candidate"], times["reference"])

    def ratio(self, candidate: Path, reference: Path) -> float:
        """candidate's time / reference's (below 1: candidate is faster), paired median."""
        return self.compare(candidate, reference).ratio

    def p50_ms(self, paths: dict[str, Path]) -> dict[str, float]:
        """Median time of each file in ms (this timing's clock), runs interleaved in
        alternating order so that drifts of the machine hit every file alike."""
        times = self._interleaved(self._runs(paths))
        return {label: float(np.median(values)) for label, values in times.items()}

    def _runs(self, paths: dict[str, Path]) -> dict[str, Callable[[], float]]:
        return {
            label: self._timer(make_session(path, self.threads)) for label, path in paths.items()
        }

    def _timer(self, session: ort.InferenceSession) -> Callable[[], float]:
        """One inference, returning its time in ms on this timing's clock."""
        feeds = {meta.name: x for meta, x in zip(session.get_inputs(), self.inputs, strict=True)}
        clock = time.thread_time_ns if self.cpu_clock else time.perf_counter_ns

        def run() -> float:
            start = clock()
            session.run(None, feeds)
            return (clock() - start) / 1e6

        return run

    def _interleaved(self, runs: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
        first = {label: min(run() for _ in range(WARMUP)) for label, run in runs.items()}
        count = int(BUDGET_S * 1000.0 / max(sum(first.values()), 1e-3))
        count = min(MAX_PAIRS, max(MIN_PAIRS, count))
        times: dict[str, list[float]] = {label: [] for label in runs}
        order = list(runs)
        for round_ in range(count):
            for label in order if round_ % 2 == 0 else reversed(order):
                times[label].append(runs[label]())
        return times
