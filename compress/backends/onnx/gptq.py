"""GPTQ (Frantar et al., 2022) for one weight `B [K, N]` given its input Hessian `H = X^T X`.

Columns of K are quantized one at a time; the rounding error of each is spread over the columns
not yet quantized through the inverse Hessian's Cholesky factor, so the layer's output on the
calibration inputs moves as little as possible. `act_order` visits the columns with the largest
Hessian diagonal first; the block ranges are then fixed beforehand from the float weights
(static groups), so that blocks stay contiguous along K as MatMulNBits needs. Lazy batch
updates in chunks of `CHUNK` columns keep the work in matrix products.
"""

from __future__ import annotations

import numpy as np

from compress.backends.onnx.blocks import (
    Grid,
    codes_for,
    implicit_zeros,
    padded_blocks,
    searched_range,
)

#: Columns updated together (GPTQ's lazy batch); a multiple of every block size up to 128.
CHUNK = 128


def gptq_grid(
    weight: np.ndarray,
    hessian: np.ndarray,
    bits: int,
    block: int,
    symmetric: bool,
    damping: float,
    act_order: bool,
) -> Grid:
    """The GPTQ grid of `weight [K, N]` for inputs whose `X^T X` is `hessian [K, K]`."""
    rows, columns = weight.shape
    work = np.ascontiguousarray(weight.T, dtype=np.float32)  # [N, K]: one row per output
    hessian = hessian.astype(np.float64).copy()
    dead = np.diag(hessian) == 0  # inputs that are always zero: their weights do not matter
    hessian[dead, dead] = 1
    work[:, dead] = 0
    order = np.argsort(-np.diag(hessian), kind="stable") if act_order else np.arange(rows)
    chunk = max(CHUNK, block)
    static = act_order
    blocks_of = np.arange(rows) // block  # block of each original column
    scales = np.zeros((columns, -(-rows // block)), np.float32)
    zeros = np.zeros(scales.shape, np.float32)
    if static:  # every block's range from the float weights, before any update
        diagonal = np.zeros(scales.shape[1] * block, np.float32)
        diagonal[:rows] = np.diag(hessian)
        importance = diagonal.reshape(-1, block)
        scales[:], found = searched_range(padded_blocks(weight, block), bits, symmetric, importance)
        zeros[:] = implicit_zeros(found, scales.shape, bits)
    work = work[:, order]
    hessian = hessian[np.ix_(order, order)]
    hessian[np.diag_indices(rows)] += damping * float(np.mean(np.diag(hessian)))
    upper = _inverse_cholesky_upper(hessian)
    codes = np.zeros((columns, rows), np.uint8)
    for start in range(0, rows, chunk):
        stop = min(start + chunk, rows)
        part = work[:, start:stop].copy()
        errors = np.zeros_like(part)
        factor = upper[start:stop, start:stop].astype(np.float32)
        for offset in range(stop - start):
            original = order[start + offset]
            group = blocks_of[original]
            if not static and original % block == 0:  # the block starts: its range now
                span = part[:, offset : offset + block]
                importance = np.diag(hessian)[start + offset : start + offset + block]
                scale, found = searched_range(span[:, None, :], bits, symmetric, importance)
                scales[:, group] = scale[:, 0]
                zeros[:, group] = implicit_zeros(found, scale.shape, bits)[:, 0]
            column = part[:, offset]
            code = codes_for(column, scales[:, group], zeros[:, group], bits)
            codes[:, start + offset] = code
            quantized = (code.astype(np.float32) - zeros[:, group]) * scales[:, group]
            error = (column - quantized) / factor[offset, offset]
            part[:, offset:] -= np.outer(error, factor[offset, offset:])
            errors[:, offset] = error
        work[:, stop:] -= errors @ upper[start:stop, stop:].astype(np.float32)
    codes = codes[:, np.argsort(order, kind="stable")]
    padded = np.full((columns, scales.shape[1] * block), 0, np.uint8)
    padded[:, :rows] = codes
    padded[:, rows:] = np.repeat(zeros[:, -1:], padded.shape[1] - rows, axis=1).astype(np.uint8)
    return Grid(
        padded,
        scales,
        None if symmetric else zeros.astype(np.uint8),
        bits,
        block,
        rows,
    )


def _inverse_cholesky_upper(hessian: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor U of H^-1 (H^-1 = U^T U), damped further if H is not
    positive definite (collinear calibration inputs)."""
    extra = 0.0
    scale = float(np.mean(np.diag(hessian)))
    for _ in range(8):
        try:
            lower = np.linalg.cholesky(hessian + extra * np.eye(len(hessian)))
            inverse_lower = np.linalg.inv(lower)
            inverse = inverse_lower.T @ inverse_lower
            return np.linalg.cholesky(inverse).T
        except np.linalg.LinAlgError:
            extra = scale * 0.01 if extra == 0 else extra * 10
    raise np.linalg.LinAlgError("the Hessian stays singular after damping")
