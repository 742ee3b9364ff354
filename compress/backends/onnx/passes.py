"""Handlers of passes that rewrite exported ONNX files, whatever framework the model came from."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from compress.backends.base import PassContext
from compress.backends.onnx.fallback import Scorer, revert_until_within
from compress.backends.onnx.placement import search
from compress.backends.onnx.quantize import Quantizer
from compress.backends.onnx.timing import Timing
from compress.errors import ModelError
from compress.measure.latency import latency_inputs
from compress.passes.quantize import PostTrainingQuantize
from compress.recipe import LatencySpec

#: A model this fast (ms per inference) spends its time in per-op overhead: INT8 rarely pays.
SMALL_MODEL_MS = 0.2


def quantize_file(
    source: Path, target: Path, config: PostTrainingQuantize, context: PassContext
) -> dict:
    """Post-training quantization from `source` to `target`: quantize everything the mode
    takes, keep in float what is slower in INT8 on this CPU (static, `placement: speed`), then
    revert nodes to float while the accuracy drop exceeds `max_accuracy_drop`."""
    samples, batch = calibration_inputs(config, context)
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        quantizer = Quantizer.prepare(source, scratch, config, samples, batch)
        current = scratch / "quantized.onnx"
        quantizer.write(current)
        keep_float: set[str] = set()
        record: dict = {"reverted_nodes": []}
        timing = _timing(context)
        if config.searches_placement:
            placement = search(quantizer, current, timing)
            keep_float, current = placement.keep_float, placement.path
            record.update(placement.record())
            _note_speed(source, current, timing, context)
        if config.max_accuracy_drop is not None:
            fallback = revert_until_within(
                quantizer, current, keep_float, _scorer(context, source), config.max_accuracy_drop
            )
            record.update(fallback.record())
            if fallback.reverted:
                p50 = timing.p50_ms({"before": current, "after": fallback.path})
                record["fallback_latency_ms"] = {k: round(v, 4) for k, v in p50.items()}
            current = fallback.path
        shutil.copyfile(current, target)
    if quantizer.generation_state is not None:
        context.generation_state[id(config)] = quantizer.generation_state
    return {
        "mode": config.mode,
        "weights": config.weights,
        **quantizer.chosen,
        "excluded_nodes": quantizer.user_excluded,
        **record,
    }


def calibration_inputs(
    config: PostTrainingQuantize, context: PassContext
) -> tuple[list[np.ndarray] | None, int]:
    """Calibration inputs from the first of the pass's splits that data.source returned."""
    if not config.splits:
        return None, 1
    found = context.split(config)
    if found is None:
        raise ModelError(
            f"quantize: {config.mode} mode calibrates on the 'calibration' (or 'train') "
            "split, and data.source returned neither"
        )
    name, split = found
    if name != config.splits[0]:
        context.reporter.note(f"quantize: no '{config.splits[0]}' split; calibrated on '{name}'")
    return split.take(config.calibration.samples).inputs, context.recipe.eval_batch


def _timing(context: PassContext) -> Timing:
    """Time decisions as the report will measure: the recipe's latency batch and threads, on
    its inputs (real val samples when there are enough); the CPU even for CUDA reports."""
    spec = context.recipe.measure.latency or LatencySpec()
    val = context.data.get("val")
    inputs = latency_inputs(context.recipe.model.inputs, spec, val.inputs if val else None)
    return Timing(inputs, spec.threads)


def _scorer(context: PassContext, source: Path) -> Scorer:
    val = context.data.get("val")
    if val is None:
        raise ModelError(
            "quantize: max_accuracy_drop is measured on the val split, "
            "which data.source did not return"
        )
    recipe = context.recipe
    metric = recipe.evaluate.metric if recipe.evaluate else None
    scorer = Scorer(val.inputs, val.targets, metric, recipe.base_dir, recipe.eval_batch)
    return scorer.bind(source)


def _note_speed(source: Path, quantized: Path, timing: Timing, context: PassContext) -> None:
    """Say so when no INT8 placement is faster than float, and why that is likely."""
    p50 = timing.p50_ms({"float": source, "int8": quantized})
    if p50["int8"] <= p50["float"]:
        return
    small = (
        f"; at {p50['float']:.3g} ms per inference the model is too small for INT8 to pay off "
        "(quantize/dequantize and per-op overhead outweigh the faster kernels)"
        if p50["float"] < SMALL_MODEL_MS
        else ""
    )
    context.reporter.note(
        f"quantize: the fastest INT8 placement found is slower than float on this CPU "
        f"({p50['int8']:.3g} ms vs {p50['float']:.3g} ms){small}"
    )
