"""`stats`: summary statistics of every block, streamed one stored tensor at a time."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .blocks import iter_blocks, select_cells
from .cell import GATES, ROLES
from .inventory import open_cells

_CHUNK = 1 << 22  # elements per float64 pass: bounds the temporary memory of a huge block


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


def block_stats(gate: str, role: str, values: np.ndarray, dtype: str) -> BlockStats:
    """Statistics over the finite values; NaN and Inf are counted, not averaged."""
    flat = values.reshape(-1)
    n = count = zeros = nans = infs = 0
    mean = m2 = sumsq = 0.0
    lo, hi = math.inf, -math.inf
    for start in range(0, flat.size, _CHUNK):
        chunk = np.asarray(flat[start : start + _CHUNK], dtype=np.float64)
        n += chunk.size
        finite = np.isfinite(chunk)
        if not finite.all():
            nans += int(np.isnan(chunk).sum())
            infs += int(np.isinf(chunk).sum())
            chunk = chunk[finite]
        if chunk.size == 0:
            continue
        zeros += int(np.count_nonzero(chunk == 0))
        c_mean = float(chunk.mean())
        c_m2 = float(((chunk - c_mean) ** 2).sum())
        sumsq += float(np.dot(chunk, chunk))
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
        # Chan et al. pairwise merge keeps the variance accurate across chunks.
        total = count + chunk.size
        delta = c_mean - mean
        mean += delta * chunk.size / total
        m2 += c_m2 + delta * delta * count * chunk.size / total
        count = total
    nan = math.nan
    return BlockStats(
        gate=gate, role=role, shape=list(values.shape), dtype=dtype,
        mean=mean if count else nan, std=math.sqrt(m2 / count) if count else nan,
        min=lo if count else nan, max=hi if count else nan, l2_norm=math.sqrt(sumsq) if count else nan,
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

    def to_json(self) -> dict:
        return {"source": self.source, "cells": [c.to_json() for c in self.cells]}


def compute_stats(path: str, patterns=None, progress=None) -> StatsReport:
    """Per cell and block: shape, mean, std, min, max, L2 norm, zero fraction, NaN/Inf counts.

    ``progress(done_blocks, total_blocks)`` is called as blocks finish, when given.
    """
    with open_cells(path) as (store, inventory):
        cells = select_cells(inventory.cells, patterns)
        report = StatsReport(inventory.source, [CellStats(c, []) for c in cells])
        by_cell = {id(c.cell): c for c in report.cells}
        total = sum(len(c.blocks) for c in cells)
        done = 0
        for cell, block, values in iter_blocks(store, cells, copy=False):
            by_cell[id(cell)].blocks.append(block_stats(block.gate, block.role, values, cell.dtype))
            done += 1
            if progress:
                progress(done, total)
        for c in report.cells:
            c.blocks.sort(key=lambda b: (GATES.index(b.gate), ROLES.index(b.role)))
        return report
