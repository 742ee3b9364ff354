"""Post-training quantization, one node at a time, with the pass's own quantizer: each node
quantized alone (the rest float), and each node alone back in float from the fully quantized
model, ranked as the accuracy-aware fallback ranks (compress/backends/onnx/ranking.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from compress.analysis.schema import NodeSensitivity
from compress.analysis.subject import Subject
from compress.backends.onnx.passes import calibration_inputs
from compress.backends.onnx.quantize import Quantizer
from compress.backends.onnx.ranking import per_cost, rank_reverts
from compress.passes.quantize import PostTrainingQuantize


def count_nodes(subject: Subject, config: PostTrainingQuantize) -> tuple[Quantizer, list[str]]:
    """The quantizer over the baseline and the nodes it quantizes (the scan's candidates)."""
    samples, batch = calibration_inputs(config, subject.context)
    folder = subject.scratch / "quantize"
    folder.mkdir(exist_ok=True)
    quantizer = Quantizer.prepare(subject.baseline, folder, config, samples, batch)
    full = folder / "full.onnx"
    quantizer.write(full)
    return quantizer, quantizer.quantized_nodes(full)


def scan_nodes(
    subject: Subject, quantizer: Quantizer, candidates: list[str]
) -> tuple[list[NodeSensitivity], float]:
    """Every candidate's drops (alone quantized, alone reverted) and ranking gain, most harmful
    first; and the drop of the fully quantized model."""
    with subject.bar("scanning nodes", 2 * len(candidates)) as advance:
        return _scan(subject, quantizer, candidates, advance)


def _scan(
    subject: Subject, quantizer: Quantizer, candidates: list[str], advance: Callable[..., None]
) -> tuple[list[NodeSensitivity], float]:
    scorer = subject.scorer
    full = quantizer.scratch / "full.onnx"
    quantized = scorer.outputs(full)
    trial = quantizer.scratch / "trial.onnx"
    reverted: dict[str, float] = {}

    def outputs_without(name: str, rows: np.ndarray) -> np.ndarray:
        quantizer.write(trial, {name})
        outputs = scorer.outputs(trial)
        reverted[name] = scorer.drop(outputs)
        advance(status=f"reverted {name}")
        return outputs[rows]

    ranked = rank_reverts(candidates, outputs_without, scorer.reference, quantized)
    full_drop = scorer.drop(quantized)
    ops = quantizer.node_ops()
    rows = []
    places = iter(range(1, len(ranked) + 1))
    for item in ranked:
        quantizer.write(trial, set(candidates) - {item.name})
        alone = scorer.drop(scorer.outputs(trial))
        advance(status=f"alone {item.name}")
        rows.append(
            NodeSensitivity(
                name=item.name,
                op=ops.get(item.name, "?"),
                alone_drop=round(alone, 6),
                reverted_drop=round(reverted[item.name], 6),
                gain=float(f"{item.gain:.6g}"),
                gain_share=round(item.share, 6),
                rank=next(places) if item.gain > 0 and full_drop > 0 else None,
            )
        )
    return rows, full_drop


def ranked_nodes(subject: Subject, config: PostTrainingQuantize) -> tuple[list[str], float]:
    """The pass's quantized nodes whose reversion (to float, or for weight-only to 8 bits)
    gains anything, the best buy first (the fallback's ranking and order, on the baseline): the
    order `compress tune` keeps nodes in float or widens them; and the drop quantizing every one
    of them costs the baseline."""
    quantizer, candidates = count_nodes(subject, config)
    scorer = subject.scorer
    quantized = scorer.outputs(quantizer.scratch / "full.onnx")
    trial = quantizer.scratch / "trial.onnx"

    def outputs_without(name: str, rows: np.ndarray) -> np.ndarray:
        quantizer.write(trial, {name})
        return scorer.outputs(trial, rows)

    ranked = per_cost(
        rank_reverts(candidates, outputs_without, scorer.reference, quantized),
        quantizer.revert_cost,
    )
    return [item.name for item in ranked if item.gain > 0], scorer.drop(quantized)
