"""onnxruntime's quantizer used by hand, as its documentation gives it: the INT8 peer that
benchmarks/quantize.py and prune_structured.py measure compress against."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)


def batch_feeds(names: Sequence[str], inputs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """One feed of batch 1 per sample."""
    return [
        {name: np.ascontiguousarray(x[i : i + 1]) for name, x in zip(names, inputs, strict=True)}
        for i in range(len(inputs[0]))
    ]


class FeedReader(CalibrationDataReader):
    """onnxruntime calibration over a list of feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self.feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def by_hand(fp32: Path, target: Path, feeds: Sequence[dict], transformer: bool) -> None:
    """onnxruntime's documented recipe: `quantize_dynamic` (per-channel QInt8) for transformers;
    for CNNs `quant_pre_process`, then `quantize_static` QDQ with uint8 activations and int8
    per-channel weights (its x86 advice), calibrated on `feeds`."""
    if transformer:
        quantize_dynamic(
            str(fp32),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        return
    pre = target.with_name(f"{target.stem}_pre_processed.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(target),
        FeedReader(feeds),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
