"""Which blocks each weight gets: the weight-only algorithms behind one function,
`Choose(initializer, weight, bits) -> Grid`, that the MatMulNBits writer calls per weight.

Round to nearest and HQQ look at the weight alone. GPTQ runs first, over the whole graph in
order (sequential calibration), and its grids are then handed out by weight; a width it did not
calibrate (the 8-bit layers of mixed precision) is rounded to nearest, which 8 bits affords.
Every grid handed out is remembered by value, so that the generation decoder, which holds the
same weights (some fused side by side), gets exactly the same blocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import onnx

from compress.backends.onnx.awq import Smoothing, awq_smooth, matmul_groups
from compress.backends.onnx.blocks import Grid, GridMemo, column_keys, rtn_grid
from compress.backends.onnx.gptq import gptq_grid
from compress.backends.onnx.hqq import hqq_grid
from compress.backends.onnx.sequential import SequentialRunner, batches_of, input_hessian
from compress.backends.onnx.weight_only import BITS, Choose, constant_weight
from compress.passes.quantize import AWQQuantize, GPTQQuantize, HQQQuantize, WeightOnlyQuantize


def calibration_free(config: WeightOnlyQuantize) -> Choose:
    """The algorithm's blocks from the weight alone (the calibrated ones': round to nearest)."""
    return FROM_THE_WEIGHT.get(type(config), _round_to_nearest)(config)


def _round_to_nearest(config: WeightOnlyQuantize) -> Choose:
    return lambda name, weight, bits: rtn_grid(weight, bits, config.block_size, config.symmetric)


def _half_quadratic(config: HQQQuantize) -> Choose:
    return lambda name, weight, bits: hqq_grid(weight, bits, config.block_size, config.iterations)


#: The calibration-free algorithms other than round to nearest, by config class.
FROM_THE_WEIGHT: dict[type, Callable[[Any], Choose]] = {HQQQuantize: _half_quadratic}


@dataclass
class Grids:
    """The grids of one pass: calibrated ones by initializer (GPTQ), the calibration-free
    algorithm for the rest, and the memo of every grid handed out."""

    config: WeightOnlyQuantize
    calibrated: GridMemo = field(default_factory=GridMemo.empty)
    memo: GridMemo = field(default_factory=GridMemo.empty)
    record: dict = field(default_factory=dict)
    #: What awq changed in the float weights (None for the other algorithms).
    smoothing: Smoothing | None = None
    #: The width each column was last written at (None: left float), by column fingerprint:
    #: the last write is the file the pass keeps, mixed precision included.
    widths: dict[bytes, int | None] = field(default_factory=dict)

    def choose(self, name: str, weight: np.ndarray, bits: int) -> Grid:
        """The calibrated grid of these values at `bits`, else the one handed out before for
        them (the fallback and the ranking write many files), else the calibration-free one."""
        grid = self.calibrated.recall(weight, bits)
        if grid is None:
            grid = self.memo.recall(weight, bits)
        if grid is None:
            grid = calibration_free(self.config)(name, weight, bits)
        self.memo.remember(weight, grid)
        self.widths.update(dict.fromkeys(column_keys(weight), bits))
        return grid

    def begin_write(self, model: onnx.ModelProto, floats: Collection[str]) -> None:
        """A new file is being written, with the MatMuls `floats` of `model` left float."""
        self.widths = {}
        for node in model.graph.node:
            if node.op_type != "MatMul" or node.name not in floats:
                continue
            weight = constant_weight(model.graph, node.input[1])
            if weight is not None:
                self.widths.update(dict.fromkeys(column_keys(weight.array(model.graph))))

    def decoder_widths(self, model: onnx.ModelProto) -> tuple[list[str], list[str]]:
        """The MatMuls of a generation decoder graph that the kept file has in float and at 8
        bits (by their weights' values; a fused weight takes the widest of its parts)."""
        floats, wider = [], []
        for node in model.graph.node:
            weight = (
                constant_weight(model.graph, node.input[1]) if node.op_type == "MatMul" else None
            )
            if weight is None:
                continue
            seen = [self.widths.get(key, 0) for key in column_keys(weight.array(model.graph))]
            if None in seen:
                floats.append(node.name)
            elif max(seen, default=0) == 8:
                wider.append(node.name)
        return floats, wider

    def for_decoder(self) -> tuple[Choose, dict[str, int]]:
        """A `Choose` for the generation decoder: the grid remembered for the same values,
        else the calibration-free one; and the counts of both, filled as it is called."""
        counts = {"decoder_weights_matched": 0, "decoder_weights_unmatched": 0}
        fresh = calibration_free(self.config)

        def choose(name: str, weight: np.ndarray, bits: int) -> Grid:
            grid = self.memo.recall(weight, bits)
            counts["decoder_weights_matched" if grid else "decoder_weights_unmatched"] += 1
            return grid if grid is not None else fresh(name, weight, bits)

        return choose, counts


def prepare_grids(
    model: onnx.ModelProto,
    config: WeightOnlyQuantize,
    calibration: list[np.ndarray] | None,
    batch: int,
    skipped: Collection[str],
    calibrate: bool = True,
) -> Grids:
    """The pass's grids; a calibrated algorithm (unless `calibrate` is false) first runs over
    every MatMul not `skipped`, in graph order."""
    grids = Grids(config)
    grids.record = {"algorithm": config.algorithm}
    calibrator = CALIBRATORS.get(type(config))
    if calibrator is not None and calibrate:
        assert calibration is not None  # the pass's splits guarantee it
        started = time.perf_counter()
        calibrator(grids, CalibrationRun(model, calibration, batch, skipped))
        grids.record.update(
            calibration_samples=len(calibration[0]),
            calibration_seconds=round(time.perf_counter() - started, 2),
        )
    return grids


@dataclass(frozen=True)
class CalibrationRun:
    """What a calibrated algorithm runs on: the graph, its calibration inputs (fed `batch`
    samples at a time) and the MatMuls to leave alone."""

    model: onnx.ModelProto
    calibration: list[np.ndarray]
    batch: int
    skipped: Collection[str]


def _calibrate_gptq(grids: Grids, run: CalibrationRun) -> None:
    config = cast(GPTQQuantize, grids.config)  # CALIBRATORS is keyed by the class
    grids.calibrated, count = gptq_sequential(
        run.model, config, run.calibration, run.batch, run.skipped
    )
    grids.record.update(
        calibrated_weights=count, damping=config.damping, act_order=config.act_order
    )


def _calibrate_awq(grids: Grids, run: CalibrationRun) -> None:
    config = grids.config
    bits = BITS[config.weights]
    assert bits is not None
    grids.smoothing = awq_smooth(
        run.model,
        run.calibration,
        run.batch,
        bits,
        config.block_size,
        config.symmetric,
        run.skipped,
    )
    grids.record["awq_alphas"] = grids.smoothing.alphas


#: The calibrated algorithms, by config class: what runs before any block is chosen.
CALIBRATORS: dict[type, Callable[[Grids, CalibrationRun], None]] = {
    GPTQQuantize: _calibrate_gptq,
    AWQQuantize: _calibrate_awq,
}


def gptq_sequential(
    model: onnx.ModelProto,
    config: GPTQQuantize,
    calibration: list[np.ndarray],
    batch: int,
    skipped: Collection[str],
) -> tuple[GridMemo, int]:
    """GPTQ grids of every constant MatMul weight (found by value), and how many. MatMuls
    sharing an
    input (q, k and v) are solved together from one Hessian; each group's weights are replaced
    by their quantized values before the next group's inputs are computed."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    names = [i.name for i in graph.input if i.name not in initializers]
    runner = SequentialRunner(model, list(batches_of(names, calibration, batch)))
    groups = matmul_groups(graph, skipped)
    bits = BITS[config.weights]
    assert bits is not None
    solved: set[str] = set()
    memo = GridMemo.empty()
    for source, nodes in groups.items():  # graph order: a group's inputs follow its ancestors
        hessian = input_hessian(runner.tensor(source))
        for node in nodes:
            weight = constant_weight(graph, node.input[1])
            assert weight is not None
            if weight.initializer in solved:
                continue
            grid = gptq_grid(
                weight.array(graph),
                hessian,
                bits,
                config.block_size,
                config.symmetric,
                config.damping,
                config.act_order,
            )
            solved.add(weight.initializer)
            memo.remember(weight.array(graph), grid)
            quantized = grid.dequantized()
            runner.set_weight(weight.initializer, quantized.T if weight.transposed else quantized)
    return memo, len(solved)
