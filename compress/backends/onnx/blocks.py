"""Block-quantized weights as MatMulNBits reads them, whatever algorithm chose them.

A `Grid` is one weight `B [K, N]` (x @ B) quantized along K in blocks: integer codes, one scale
per block and column, and integer zero points (implicit `2^(bits-1)` when symmetric). Round to
nearest, GPTQ and HQQ all produce grids; `matmul_nbits` writes one as onnxruntime's
`com.microsoft.MatMulNBits` (the layout of its own quantizer, which the fast CPU kernels read),
and `dequantized` gives back the float weight it stands for (what calibration runs through).
Zero points are always integers, so every algorithm's model runs on the same kernels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass(frozen=True)
class Grid:
    """Codes `[N, K_padded]` (uint8, below 2^bits), scales and zero points `[N, blocks]`;
    `zeros` None for symmetric blocks (the implicit zero point 2^(bits-1))."""

    codes: np.ndarray
    scales: np.ndarray
    zeros: np.ndarray | None
    bits: int
    block: int
    rows: int  # K, before padding

    @property
    def zero_points(self) -> np.ndarray:
        """The zero point of every block, implicit ones included."""
        if self.zeros is not None:
            return self.zeros
        return np.full(self.scales.shape, 1 << (self.bits - 1), np.uint8)

    def dequantized(self) -> np.ndarray:
        """The float weight `[K, N]` the grid stands for."""
        columns, _ = self.codes.shape
        codes = self.codes.reshape(columns, -1, self.block).astype(np.float32)
        zeros = self.zero_points.astype(np.float32)[..., None]
        values = (codes - zeros) * self.scales.astype(np.float32)[..., None]
        return np.ascontiguousarray(values.reshape(columns, -1)[:, : self.rows].T)

    def columns(self, start: int, stop: int) -> Grid:
        """Columns `start:stop` of the weight as a grid of their own."""
        zeros = None if self.zeros is None else self.zeros[start:stop]
        return Grid(
            self.codes[start:stop],
            self.scales[start:stop],
            zeros,
            self.bits,
            self.block,
            self.rows,
        )


def padded_blocks(weight: np.ndarray, block: int) -> np.ndarray:
    """`weight [K, N]` as `[N, blocks, block]`, K padded with zeros to whole blocks."""
    rows, columns = weight.shape
    blocks = -(-rows // block)
    padded = np.zeros((blocks * block, columns), np.float32)
    padded[:rows] = weight
    return np.ascontiguousarray(padded.T).reshape(columns, blocks, block)


def block_range(
    blocks: np.ndarray, bits: int, symmetric: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scales and zero points of round-to-nearest over the last axis, as onnxruntime's
    quantizer chooses them: symmetric, the signed largest magnitude maps to -2^(bits-1);
    asymmetric, the range [min(x, 0), max(x, 0)] spans the codes."""
    levels = (1 << bits) - 1
    if symmetric:
        high, low = blocks.max(axis=-1), blocks.min(axis=-1)
        largest = np.where(np.abs(high) > np.abs(low), high, low)
        return largest / -float(1 << (bits - 1)), None
    low = np.minimum(blocks.min(axis=-1), 0)
    high = np.maximum(blocks.max(axis=-1), 0)
    scales = (high - low) / levels
    safe = np.where(scales == 0, 1, scales)
    zeros = np.where(scales == 0, 1 << (bits - 1), np.round(-low / safe))
    return scales, np.clip(zeros, 0, levels).astype(np.uint8)


#: Shrink factors of the block range that `searched_range` tries (1 = round to nearest's).
SHRINKS = np.linspace(1.0, 0.7, 16)


def searched_range(
    blocks: np.ndarray, bits: int, symmetric: bool, importance: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Scales and zero points of each block (last axis) with the smallest squared error,
    weighted by `importance` (per position along the block, broadcast), among the round-to-
    nearest range shrunk by each of `SHRINKS`: clipping a few large weights often buys a finer
    step for all the others."""
    weights = 1.0 if importance is None else importance
    best_scales, best_zeros = block_range(blocks, bits, symmetric)
    best_error = np.full(best_scales.shape, np.inf)
    for shrink in SHRINKS:
        scales, zeros = block_range(blocks * shrink, bits, symmetric)
        implicit = implicit_zeros(zeros, scales.shape, bits)
        codes = codes_for(blocks, scales[..., None], implicit[..., None], bits).astype(np.float32)
        rebuilt = (codes - implicit[..., None]) * scales[..., None]
        error = np.sum(weights * (blocks - rebuilt) ** 2, axis=-1)
        better = error < best_error
        best_error = np.where(better, error, best_error)
        best_scales = np.where(better, scales, best_scales)
        if zeros is not None and best_zeros is not None:
            best_zeros = np.where(better, zeros, best_zeros)
    return best_scales, best_zeros


def implicit_zeros(zeros: np.ndarray | None, shape: tuple[int, ...], bits: int) -> np.ndarray:
    """Zero points as floats, the implicit ones of symmetric blocks included."""
    if zeros is None:
        return np.full(shape, 1 << (bits - 1), np.float32)
    return zeros.astype(np.float32)


def codes_for(values: np.ndarray, scales: np.ndarray, zeros: np.ndarray, bits: int) -> np.ndarray:
    """The codes of `values` on the grid (scales and zero points broadcast against it)."""
    safe = np.where(scales == 0, 1, scales)
    codes = np.round(values / safe) + zeros
    return np.clip(codes, 0, (1 << bits) - 1).astype(np.uint8)


def rtn_grid(weight: np.ndarray, bits: int, block: int, symmetric: bool) -> Grid:
    """Round to nearest: each block's range from its own values."""
    blocks = padded_blocks(weight.astype(np.float32), block)
    scales, zeros = block_range(blocks, bits, symmetric)
    implicit = np.full(scales.shape, 1 << (bits - 1), np.uint8) if zeros is None else zeros
    codes = codes_for(blocks, scales[..., None], implicit[..., None].astype(np.float32), bits)
    return Grid(
        codes.reshape(len(codes), -1),
        scales.astype(np.float32),
        zeros,
        bits,
        block,
        weight.shape[0],
    )


def matmul_nbits(
    graph: onnx.GraphProto, node: onnx.NodeProto, grid: Grid, prefix: str
) -> onnx.NodeProto:
    """A MatMulNBits node computing `node` (a MatMul) with `grid` as its weight; the packed
    weight, scales and zero points are added to `graph` as `<prefix>_Q{bits}`, `_scales` and
    `_zero_points` (names made unique)."""
    columns = grid.codes.shape[0]
    blocks = grid.scales.shape[1]
    codes = grid.codes.reshape(columns, blocks, grid.block)
    inputs = [
        node.input[0],
        add_initializer(graph, _packed(codes, grid.bits), f"{prefix}_Q{grid.bits}"),
        add_initializer(graph, grid.scales.astype(np.float32), f"{prefix}_scales"),
    ]
    if grid.zeros is not None:
        zeros = _packed(grid.zeros, grid.bits, pad=1 << (grid.bits - 1))  # as onnxruntime pads
        inputs.append(add_initializer(graph, zeros, f"{prefix}_zero_points"))
    return helper.make_node(
        "MatMulNBits",
        inputs,
        list(node.output),
        name=f"{node.name}_Q{grid.bits}" if node.name else "",
        domain="com.microsoft",
        K=grid.rows,
        N=columns,
        bits=grid.bits,
        block_size=grid.block,
    )


def _packed(codes: np.ndarray, bits: int, pad: int = 0) -> np.ndarray:
    """Codes along the last axis packed as MatMulNBits stores them: 8-bit as they are, 4-bit
    two per byte, the first in the low nibble (an odd count padded with `pad`)."""
    if bits == 8:
        return np.ascontiguousarray(codes.astype(np.uint8))
    if codes.shape[-1] % 2:
        padding = np.full((*codes.shape[:-1], 1), pad, codes.dtype)
        codes = np.concatenate([codes, padding], axis=-1)
    low, high = codes[..., 0::2], codes[..., 1::2]
    return np.ascontiguousarray((low | (high << 4)).astype(np.uint8))


def add_initializer(graph: onnx.GraphProto, array: np.ndarray, name: str) -> str:
    """Add `array` under `name`, or under `name_2`, `name_3`... when taken; the name used."""
    taken = {t.name for t in graph.initializer}
    unique, count = name, 1
    while unique in taken:
        count += 1
        unique = f"{name}_{count}"
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), unique))
    return unique


def column_keys(weight: np.ndarray) -> list[bytes]:
    """A fingerprint of each column of `weight [K, N]` (its exact float32 bytes)."""
    columns = np.ascontiguousarray(weight.astype(np.float32).T)
    return [hashlib.blake2b(column.tobytes(), digest_size=16).digest() for column in columns]


@dataclass
class GridMemo:
    """Grids chosen on one graph, found again by value in another (the generation decoder
    holds the same weights, sometimes as one fused MatMul: q, k and v side by side). Columns
    are matched one by one, since blocks run along K and every column is quantized alone."""

    found: dict[tuple[int, bytes], tuple[Grid, int]]

    @classmethod
    def empty(cls) -> GridMemo:
        return cls({})

    def remember(self, weight: np.ndarray, grid: Grid) -> None:
        for column, key in enumerate(column_keys(weight)):
            self.found[(grid.bits, key)] = (grid, column)

    def recall(self, weight: np.ndarray, bits: int) -> Grid | None:
        """The grid of `weight [K, N]` assembled from remembered columns, or None when any
        column was not seen at `bits`."""
        parts = []
        for key in column_keys(weight):
            hit = self.found.get((bits, key))
            if hit is None:
                return None
            parts.append(hit)
        whole = parts[0][0]
        if len(whole.codes) == len(parts) and all(
            g is whole and c == i for i, (g, c) in enumerate(parts)
        ):
            return whole  # the same weight seen before, whole
        grids = [grid.columns(column, column + 1) for grid, column in parts]
        first = grids[0]
        if any(g.block != first.block or g.rows != first.rows for g in grids):
            return None
        zeros = None if first.zeros is None else np.concatenate([g.zeros for g in grids])
        return Grid(
            np.concatenate([g.codes for g in grids]),
            np.concatenate([g.scales for g in grids]),
            zeros,
            bits,
            first.block,
            first.rows,
        )
