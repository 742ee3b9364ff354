"""Accuracy-aware fallback: while the quantized model's drop on `val` exceeds the recipe's
`max_accuracy_drop`, revert the quantized node that hurts most (see ranking) to float and
re-validate; an error with the figures when every candidate is float and the limit still fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compress.backends.onnx.quantize import Quantizer
from compress.backends.onnx.ranking import per_cost, rank_reverts
from compress.errors import ModelError
from compress.measure.accuracy import fidelity, score
from compress.metrics import metric_drop
from compress.onnx import runtime


@dataclass
class Scorer:
    """The accuracy drop of a quantized file against the float model on the val split: in the
    recipe's `evaluate` metric when val has labels, else 1 - fidelity (top-1 agreement or mean
    cosine of the outputs)."""

    inputs: list[np.ndarray]
    targets: np.ndarray | None
    metric: str | None
    base_dir: Path
    batch: int
    #: onnxruntime threads per scoring session (1 for the pass; every core for the scans)
    threads: int = 1
    reference: np.ndarray = field(init=False)
    reference_score: float | None = field(init=False, default=None)

    def bind(self, float_model: Path) -> Scorer:
        """Score against `float_model`: its outputs (and metric) are the reference."""
        self.reference = self.outputs(float_model)
        if self.labelled:
            self.reference_score = score(self.metric, self.base_dir, self.reference, self.targets)
        return self

    @property
    def labelled(self) -> bool:
        return self.metric is not None and self.targets is not None

    def outputs(self, path: Path, rows: np.ndarray | None = None) -> np.ndarray:
        inputs = self.inputs if rows is None else [x[rows] for x in self.inputs]
        session = runtime.make_session(path, threads=self.threads)
        return runtime.predict(session, inputs, self.batch)[0]

    @property
    def measure(self) -> str:
        if self.labelled:
            return f"the {self.metric} metric"
        return "fidelity to the float model (no labels)"

    def drop(self, outputs: np.ndarray) -> float:
        if self.labelled:
            after = score(self.metric, self.base_dir, outputs, self.targets)
            return metric_drop(self.metric, self.reference_score, after)
        return 1.0 - fidelity(self.metric, self.reference, outputs)["value"]


@dataclass
class Fallback:
    reverted: list[str]
    drop_before: float
    drop_after: float
    path: Path

    def record(self) -> dict:
        return {
            "reverted_nodes": self.reverted,
            "accuracy_drop_before": round(self.drop_before, 6),
            "accuracy_drop_after": round(self.drop_after, 6),
        }


def revert_until_within(
    quantizer: Quantizer,
    start: Path,
    keep_float: set[str],
    scorer: Scorer,
    limit: float,
) -> Fallback:
    """Revert the most harmful quantized nodes of `start` to float, one at a time, until the
    drop is at most `limit`."""
    quantized = scorer.outputs(start)
    before = scorer.drop(quantized)
    if before <= limit:
        return Fallback([], before, before, start)

    def outputs_without(name: str, rows: np.ndarray) -> np.ndarray:
        trial = quantizer.scratch / "ranking.onnx"
        quantizer.write(trial, keep_float | {name})
        return scorer.outputs(trial, rows)

    candidates = [n for n in quantizer.quantized_nodes(start) if n not in keep_float]
    ranked = per_cost(
        rank_reverts(candidates, outputs_without, scorer.reference, quantized),
        quantizer.revert_cost,
    )
    reverted: list[str] = []
    drop = before
    for step, item in enumerate(ranked, 1):
        reverted.append(item.name)
        path = quantizer.scratch / f"fallback-{step}.onnx"
        quantizer.write(path, keep_float | set(reverted))
        drop = scorer.drop(scorer.outputs(path))
        if drop <= limit:
            return Fallback(reverted, before, drop, path)
    raise ModelError(
        f"quantize: max_accuracy_drop {limit:g} is not met even with all {len(ranked)} "
        f"quantized nodes reverted to {quantizer.reverted_to}: drop {before:.4g} fully "
        f"quantized, {drop:.4g} after reverting (measured in {scorer.measure} on val); "
        "raise the limit or use a less aggressive mode"
    )
