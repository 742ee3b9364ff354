"""HQQ (Badri and Shaji, 2023): calibration-free block ranges by half-quadratic optimisation.

Each block's zero point is fitted so that the weight error is small in an lp norm (p < 1, which
forgives a few outliers in exchange for the bulk), alternating a shrinkage step on the error with
a closed-form zero point. onnxruntime's own HQQ stops there and writes float zero points, which
send MatMulNBits to a slow kernel. Here the zero point is then rounded to an integer and each
block's scale refitted by least squares for the codes it now has, so the result is an ordinary
asymmetric grid that the fast kernels run.
"""

from __future__ import annotations

import numpy as np

from compress.backends.onnx.blocks import Grid, codes_for, padded_blocks

#: HQQ's published settings: the lp norm, the shrinkage weight and its growth per step.
LP_NORM, BETA, KAPPA = 0.7, 10.0, 1.01
#: Rounds of integer zero point + least-squares scale after the half-quadratic steps.
REFITS = 3


def hqq_grid(weight: np.ndarray, bits: int, block: int, iterations: int) -> Grid:
    """The HQQ grid of `weight [K, N]`: asymmetric blocks with integer zero points."""
    levels = float((1 << bits) - 1)
    blocks = padded_blocks(weight.astype(np.float32), block)
    low, high = blocks.min(axis=-1, keepdims=True), blocks.max(axis=-1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    inverse = levels / span  # HQQ works with 1 / scale
    zero = -low * inverse
    beta, best = BETA, np.inf
    for _ in range(iterations):
        codes = np.clip(np.round(blocks * inverse + zero), 0, levels)
        rebuilt = (codes - zero) / inverse
        error = float(np.mean(np.abs(blocks - rebuilt)))
        if error >= best:
            break
        best = error
        shrunk = _shrink(blocks - rebuilt, beta)
        zero = np.mean(codes - (blocks - shrunk) * inverse, axis=-1, keepdims=True)
        beta *= KAPPA
    zero = np.clip(np.round(zero), 0, levels)
    scale = 1.0 / inverse
    for _ in range(REFITS):
        codes = codes_for(blocks, scale, zero, bits).astype(np.float32)
        centred = codes - zero
        energy = np.sum(centred**2, axis=-1, keepdims=True)
        fitted = np.sum(blocks * centred, axis=-1, keepdims=True) / np.where(energy == 0, 1, energy)
        scale = np.where(energy == 0, scale, fitted)
    codes = codes_for(blocks, scale, zero, bits)
    columns = len(codes)
    return Grid(
        codes.reshape(columns, -1),
        scale[..., 0].astype(np.float32),
        zero[..., 0].astype(np.uint8),
        bits,
        block,
        weight.shape[0],
    )


def _shrink(error: np.ndarray, beta: float) -> np.ndarray:
    """Generalised soft-thresholding for the lp norm (p = LP_NORM)."""
    magnitude = np.abs(error)
    threshold = np.power(np.maximum(magnitude, 1e-8), LP_NORM - 1) / beta
    return np.sign(error) * np.maximum(magnitude - threshold, 0)
