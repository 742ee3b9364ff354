"""Inputs made up when the recipe gives no data: export examples, parity checks and latency.

They must be valid for what integer inputs usually mean. All zeros would make an
`attention_mask` mask every token (the model's output is then noise, and two correct runtimes
disagree by whole units), so integers default to 1 (a valid token id, an unmasked position) and
to 0 for `*type_ids` (segment 0 exists in every vocabulary). `model.inputs[].range` gives other
values: uniform in [low, high).
"""

from __future__ import annotations

import numpy as np

from compress.recipe import InputSpec

NUMPY_DTYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
}


def generated_array(spec: InputSpec, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    """Values for one input of the given shape (deterministic for a given generator state)."""
    dtype = NUMPY_DTYPES[spec.dtype]
    floating = np.issubdtype(dtype, np.floating)
    if spec.range is not None:
        low, high = spec.range
        if floating:
            return rng.uniform(low, high, shape).astype(dtype)
        return rng.integers(int(low), int(high), shape).astype(dtype)
    if floating:
        return rng.standard_normal(shape).astype(dtype)
    return np.full(shape, _default_integer(spec), dtype=dtype)


def describe(specs: list[InputSpec]) -> str:
    """How each input is generated, for messages: "input_ids = 1, attention_mask = 1"."""
    parts = []
    for spec in specs:
        if spec.range is not None:
            parts.append(f"{spec.name} uniform in [{spec.range[0]:g}, {spec.range[1]:g})")
        elif np.issubdtype(NUMPY_DTYPES[spec.dtype], np.floating):
            parts.append(f"{spec.name} ~ N(0, 1)")
        else:
            parts.append(f"{spec.name} = {_default_integer(spec)}")
    return ", ".join(parts)


def _default_integer(spec: InputSpec) -> int:
    return 0 if spec.name.endswith("type_ids") else 1
