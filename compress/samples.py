"""The samples a model and its transformed version are compared on (export parity, the check
that a channel-pruned model agrees with its masked original): real ones when the data has
enough, else generated inputs that are valid for what the inputs usually mean."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress.data import Split, Splits
from compress.generated_inputs import describe
from compress.measure.latency import latency_inputs
from compress.recipe import LatencySpec, Recipe

#: Samples compared when the recipe fixes no batch size.
PARITY_SAMPLES = 8


@dataclass(frozen=True)
class ParityInputs:
    """The inputs both the framework model and its ONNX export are run on, and where they came
    from (for the message when they disagree)."""

    arrays: list[np.ndarray]
    origin: str
    real: bool


REAL_PARITY_HINT = (
    "; generated inputs may be meaningless to this model: give data.source with real samples "
    "(a val or calibration split) for a real check, or model.inputs[].range for valid values"
)


def parity_samples(
    recipe: Recipe,
    data: Splits,
    count: int | None = None,
    splits: tuple[str, ...] = ("val", "calibration"),
) -> ParityInputs:
    """`count` real samples (from the first of `splits` with enough) when there are enough,
    else generated inputs; by default the fixed batch of the first input, or PARITY_SAMPLES."""
    first = recipe.model.inputs[0].shape[0]
    if count is None:
        count = first if isinstance(first, int) and first > 0 else PARITY_SAMPLES
    for name in splits:
        split: Split | None = data.get(name)
        if split is not None and len(split) >= count:
            arrays = [np.ascontiguousarray(x) for x in split.take(count).inputs]
            return ParityInputs(arrays, f"{count} samples of the {name} split", real=True)
    latency = recipe.measure.latency
    shape = LatencySpec(batch_size=count, dims=latency.dims if latency else {})
    arrays = latency_inputs(recipe.model.inputs, shape, None)
    origin = f"{count} generated samples ({describe(recipe.model.inputs)})"
    return ParityInputs(arrays, origin, real=False)
