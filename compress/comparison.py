"""Comparisons of two models' outputs that a NaN cannot fool: `max(diff, nan)` is `diff` in
Python, so a model that outputs NaN would pass any tolerance. Every parity, agreement and
fidelity check goes through `max_abs_diff`, which refuses non-finite values on either side,
naming the side and the output where they appeared."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compress.errors import ModelError


class NonFinite(ModelError):
    """An output (or a weight) holds NaN or ±inf."""


def check_finite(
    arrays: Sequence[np.ndarray], where: str, names: Sequence[str] | None = None
) -> None:
    """NonFinite naming `where` ("the exported model.onnx's") and the first array holding NaN
    or ±inf, by its name in `names` (default "output N")."""
    for index, array in enumerate(arrays):
        values = np.asarray(array)
        if np.issubdtype(values.dtype, np.inexact) and not np.isfinite(values).all():
            kinds = [
                name
                for name, found in (
                    ("NaN", np.isnan(values).any()),
                    ("inf", np.isinf(values).any()),
                )
                if found
            ]
            label = names[index] if names else f"output {index}"
            raise NonFinite(f"{where} {label} holds {' and '.join(kinds)}")


def max_abs_diff(
    expected: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    sides: tuple[str, str],
) -> tuple[float, float]:
    """(max |expected - actual|, max(1, max |expected|)) over every output; NonFinite when
    either side (named by `sides`) holds NaN or ±inf; inf when shapes differ."""
    check_finite(expected, sides[0])
    check_finite(actual, sides[1])
    diff, scale = 0.0, 1.0
    for want, got in zip(expected, actual, strict=True):
        if np.shape(want) != np.shape(got):
            return float("inf"), scale
        if np.size(want) == 0:
            continue
        want64 = np.asarray(want, dtype=np.float64)
        diff = max(diff, float(np.max(np.abs(want64 - np.asarray(got, dtype=np.float64)))))
        scale = max(scale, float(np.max(np.abs(want64))))
    return diff, scale
