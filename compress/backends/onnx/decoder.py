"""The `generation` role of `quantize: weight_only`: a generation (KV-cache) decoder graph, such
as onnxruntime-genai's model builder writes, quantized with the same code as an exported file
(Gemm rewrite, `ignore`, accuracy_level, embeddings, lm_head), without calibration or fallback.

Such graphs keep their weights beside them (`model.onnx.data`); the quantized graph is written as
one file, or with its tensors in `<target>.data` beside it when they pass protobuf's 2 GB limit.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from compress.backends.base import PassContext
from compress.backends.onnx.awq import apply_smoothing
from compress.backends.onnx.grids import prepare_grids
from compress.backends.onnx.quantize import excluded_nodes, matmul_form
from compress.backends.onnx.weight_only import quantize_blocks
from compress.errors import ModelError
from compress.passes.quantize import WeightOnlyQuantize

#: Tensor bytes above which the graph keeps its weights in a side file (protobuf's limit is 2 GiB).
EXTERNAL_BYTES = 1_800_000_000


def quantize_decoder(
    source: Path, target: Path, config: WeightOnlyQuantize, context: PassContext | None = None
) -> dict:
    """Quantize the decoder graph `source` (its external data read from beside it) into
    `target` with the blocks the pass chose for the same weights of the exported file (found
    by value; a calibrated algorithm is not run again), the calibration-free algorithm for any
    other; the record says what was done, as the `apply` role's does."""
    model = onnx.load(str(source))
    excluded, unmatched = excluded_nodes(model, config.ignore)
    if unmatched:
        raise ModelError(f"quantize: ignore {unmatched[0]!r} matches no node of the decoder graph")
    model, excluded = matmul_form(model, excluded)
    grids = context.generation_state.get(id(config)) if context is not None else None
    if grids is None:
        grids = prepare_grids(model, config, None, 1, excluded, calibrate=False)
    smoothed = {}
    if grids.smoothing is not None:  # awq: the same scales, folded the same way
        smoothed = {"decoder_weights_smoothed": apply_smoothing(model, grids.smoothing)}
    choose, counts = grids.for_decoder()
    floats, wider = grids.decoder_widths(model)  # mixed precision as the kept file has it
    record = quantize_blocks(model, config, sorted({*excluded, *floats}), choose, wider)
    external = save(model, target)  # no onnx checker: builders use onnxruntime-only ops
    return {
        "mode": config.mode,
        "weights": config.weights,
        **record,
        **counts,
        **smoothed,
        "excluded_nodes": excluded,
        "external_data": external,
    }


def save(model: onnx.ModelProto, target: Path) -> str | None:
    """Write `model` to `target`, its tensors in `<target>.data` when too large for one file;
    the side file's name, or None. A `<target>.data` left from before goes either way (a copied
    builder folder has one; onnx would append to it)."""
    location = f"{target.name}.data"
    (target.parent / location).unlink(missing_ok=True)
    if sum(len(t.raw_data) for t in model.graph.initializer) <= EXTERNAL_BYTES:
        onnx.save(model, str(target))
        return None
    onnx.save(
        model,
        str(target),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=1024,
    )
    return location
