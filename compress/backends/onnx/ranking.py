"""Which quantized nodes hurt most: each candidate kept in float alone, from the quantized
model, scored by how much closer the outputs come to the float model's on the samples the
quantized model gets most wrong (NNCF's accuracy control ranks the same way). One
implementation for the accuracy-aware fallback and the sensitivity tools built on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Samples the ranking looks at: the worst ones of the validation split.
RANKING_SAMPLES = 64


def sample_errors(reference: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Per-sample squared error of `outputs` against `reference`, relative to the reference's
    energy (comparable across samples and models)."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    return np.mean((out - ref) ** 2, axis=1) / (np.mean(ref**2, axis=1) + 1e-12)


def worst_samples(reference: np.ndarray, outputs: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` samples where `outputs` strays furthest from `reference`."""
    errors = sample_errors(reference, outputs)
    return np.argsort(-errors, kind="stable")[:count]


@dataclass(frozen=True)
class Ranked:
    """A candidate and how much keeping it in float reduces the error (higher: hurts more);
    `share` that reduction as a fraction of the quantized model's error."""

    name: str
    gain: float
    share: float = 0.0


def rank(
    candidates: list[str], error_without: Callable[[str], float], error: float
) -> list[Ranked]:
    """Candidates ordered by the error they remove when kept in float alone, largest first.
    `error_without(name)` is the error of the model with `name` in float; `error` with none."""
    gains = {name: error - error_without(name) for name in candidates}
    share = 1 / error if error > 0 else 0.0
    ranked = [Ranked(name, gain, gain * share) for name, gain in gains.items()]
    return sorted(ranked, key=lambda item: -item.gain)


def rank_reverts(
    candidates: list[str],
    outputs_without: Callable[[str, np.ndarray], np.ndarray],
    reference: np.ndarray,
    quantized: np.ndarray,
) -> list[Ranked]:
    """Quantized nodes by the error each removes when it alone goes back to float, measured on
    the `RANKING_SAMPLES` samples where `quantized` strays furthest from the float `reference`.
    `outputs_without(name, rows)` gives the outputs on those rows with `name` in float. The
    accuracy-aware fallback, `compress analyze` and `compress tune` all rank with this."""
    rows = worst_samples(reference, quantized, RANKING_SAMPLES)

    def error(outputs: np.ndarray) -> float:
        return float(np.mean(sample_errors(reference[rows], outputs)))

    return rank(candidates, lambda name: error(outputs_without(name, rows)), error(quantized[rows]))


def per_cost(ranked: list[Ranked], cost: Callable[[str], float]) -> list[Ranked]:
    """`ranked` by error removed per unit of what reverting a node costs (weight-only: the
    weights widened), the best buy first: the order the fallback and `compress tune` take."""
    return sorted(ranked, key=lambda item: -item.gain / cost(item.name))
