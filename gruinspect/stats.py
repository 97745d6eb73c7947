"""`stats`: summary statistics of every block, streamed one stored tensor at a time."""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from .blocks import BlockData, map_blocks, select_cells
from .cell import GATES, ROLES
from .listing import open_cells

# Elements per float64 pass: 512 KiB, so the several passes over a chunk hit the CPU cache
# instead of memory, and the temporary memory of a huge block stays small.
_CHUNK = 1 << 16


@dataclass
class BlockStats:
    gate: str
    role: str
    shape: list[int]
    dtype: str
    mean: float
    std: float
    min: float
    max: float
    l2_norm: float
    zero_fraction: float
    nan_count: int
    inf_count: int

    def to_json(self) -> dict:
        out = asdict(self)
        for key in ("mean", "std", "min", "max", "l2_norm"):
            if not math.isfinite(out[key]):
                out[key] = None  # JSON has no NaN
        return out


def _copy(dst: np.ndarray, src: np.ndarray) -> None:
    # Casting a signalling NaN to float64 warns "invalid value"; NaNs are counted, not warned about.
    with np.errstate(invalid="ignore"):
        np.copyto(dst, src)


def _row_chunks(values: np.ndarray, buffer: np.ndarray) -> Iterator[np.ndarray]:
    """``values`` converted to float64, as flat C-order pieces written into ``buffer`` in turn."""
    if values.ndim == 0:
        values = values.reshape(1)
    if values.ndim == 1:
        rows, width = values.reshape(1, -1), values.size
        for start in range(0, width, buffer.size):
            part = rows[:, start : start + buffer.size]
            _copy(buffer[: part.size].reshape(part.shape), part)
            yield buffer[: part.size]
        return
    lead = values.reshape(-1, values.shape[-1]) if values.ndim > 2 else values
    width = lead.shape[1]
    if width > buffer.size:  # rows longer than the buffer: each row is a 1-D block
        for row in lead:
            yield from _row_chunks(row, buffer)
        return
    step = max(1, buffer.size // max(width, 1))
    for start in range(0, lead.shape[0], step):
        part = lead[start : start + step]
        _copy(buffer[: part.size].reshape(part.shape), part)
        yield buffer[: part.size]


def _float64_chunks(pieces, buffer: np.ndarray) -> Iterator[np.ndarray]:
    for piece in pieces:
        if piece.size:
            yield from _row_chunks(piece, buffer)


def block_stats(gate: str, role: str, values: np.ndarray | BlockData, dtype: str) -> BlockStats:
    """Statistics over the finite values; NaN and Inf are counted, not averaged.

    ``values`` is any array view (a block of a fused tensor need not be contiguous) or a
    :class:`~gruinspect.blocks.BlockData` streamed from the file. It is read in cache-sized float64
    chunks, each summarised exactly (two passes) and merged with Chan et al.'s pairwise update,
    so the result is as accurate as one float64 pass over the whole block.
    """
    n = count = zeros = nans = infs = 0
    mean = m2 = 0.0
    lo, hi = math.inf, -math.inf
    buffer = np.empty(min(max(values.size, 1), _CHUNK), dtype=np.float64)
    pieces = values.pieces() if isinstance(values, BlockData) else (values,)
    for chunk in _float64_chunks(pieces, buffer):
        n += chunk.size
        c_lo, c_hi = float(chunk.min()), float(chunk.max())
        if not (math.isfinite(c_lo) and math.isfinite(c_hi)):  # min and max carry any NaN or Inf
            finite = np.isfinite(chunk)
            nans += int(np.isnan(chunk).sum())
            infs += int(np.isinf(chunk).sum())
            chunk = chunk[finite]
            if chunk.size == 0:
                continue
            c_lo, c_hi = float(chunk.min()), float(chunk.max())
        size = chunk.size
        zeros += size - int(np.count_nonzero(chunk))
        c_mean = float(chunk.sum()) / size
        np.subtract(chunk, c_mean, out=chunk)
        c_m2 = float(np.einsum("i,i->", chunk, chunk))  # einsum, not BLAS: no threads of its own
        lo, hi = min(lo, c_lo), max(hi, c_hi)
        # Chan et al. pairwise merge keeps the variance accurate across chunks.
        total = count + size
        delta = c_mean - mean
        mean += delta * size / total
        m2 += c_m2 + delta * delta * count * size / total
        count = total
    nan = math.nan
    return BlockStats(
        gate=gate, role=role, shape=list(values.shape), dtype=dtype,
        mean=mean if count else nan, std=math.sqrt(m2 / count) if count else nan,
        min=lo if count else nan, max=hi if count else nan,
        l2_norm=math.sqrt(m2 + count * mean * mean) if count else nan,  # sum of squares, without another pass
        zero_fraction=zeros / n if n else 0.0, nan_count=nans, inf_count=infs,
    )


@dataclass
class CellStats:
    cell: object
    blocks: list[BlockStats]

    def to_json(self) -> dict:
        c = self.cell
        return {"name": c.name, "layout": c.layout, "input_size": c.input_size, "units": c.units,
                "reset_after": c.reset_after, "dtype": c.dtype, "blocks": [b.to_json() for b in self.blocks]}


@dataclass
class StatsReport:
    source: dict
    cells: list[CellStats]
    problems: list[str] = field(default_factory=list)  # printed on stderr, not in the JSON (as before)

    def to_json(self) -> dict:
        return {"source": self.source, "cells": [c.to_json() for c in self.cells]}


def compute_stats(path: str, patterns=None, progress=None) -> StatsReport:
    """Per cell and block: shape, mean, std, min, max, L2 norm, zero fraction, NaN/Inf counts.

    ``progress(done_blocks, total_blocks)`` is called as blocks finish, when given.
    """
    with open_cells(path) as (store, inventory):
        cells = select_cells(inventory.cells, patterns)
        report = StatsReport(inventory.source, [CellStats(c, []) for c in cells])
        results = map_blocks(store, cells, lambda cell, block, values: block_stats(
            block.gate, block.role, values, cell.dtype), progress=progress)
        for c, blocks in zip(report.cells, results):
            c.blocks = blocks
            c.blocks.sort(key=lambda b: (GATES.index(b.gate), ROLES.index(b.role)))
        report.source, report.problems = inventory.source, inventory.problems_now()  # with the files read since
        return report
