"""What the report and the plots draw, as plain data: one place for both the SVG page and the PNGs.

A cell's figures are its blocks (each downsampled for drawing when large, with the true shape
kept), a value histogram per gate over that gate's blocks, and its health figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..cell import GATES, ROLES, Block, GruCell
from ..health import TAU_EDGES, CellHealth, cell_health

# Largest side of a drawn block in the HTML page; larger blocks are averaged in tiles.
PAGE_MAX_SIDE = 48
# Largest side of a drawn block in a PNG.
PNG_MAX_SIDE = 256
HISTOGRAM_BINS = 32

ROLE_TITLES = {"input_kernel": "input kernel", "recurrent_kernel": "recurrent kernel", "bias": "bias",
               "recurrent_bias": "recurrent bias"}
ROLE_COLORS = {"input_kernel": "#1b6ca8", "recurrent_kernel": "#d1495b", "bias": "#2e933c",
               "recurrent_bias": "#8f5db7"}


@dataclass
class BlockFigure:
    """One block as drawn: ``drawn`` is [rows, cols] (a bias is one row), NaN where a tile held NaN/Inf."""

    block: Block
    drawn: np.ndarray
    tile: tuple[int, int]     # stored rows x cols averaged into one drawn cell; (1, 1) when not downsampled
    scale: float              # max |finite value| of the whole block
    color_scale: float        # colours span [-color_scale, color_scale]: scale, or max |tile mean| when downsampled
    nonfinite: int

    @property
    def shape_text(self) -> str:
        return "x".join(map(str, self.block.shape))

    @property
    def downsampled(self) -> bool:
        return self.tile != (1, 1)

    @property
    def title(self) -> str:
        return f"{self.block.code_name}: {self.block.gate} {ROLE_TITLES[self.block.role]}"

    @property
    def caption(self) -> str:
        text = f"{self.shape_text}, |values| up to {self.scale:.3g}"
        if self.downsampled:
            rows, cols = self.drawn.shape
            text += (f"; drawn as {rows}x{cols} means of {self.tile[0]}x{self.tile[1]} tiles, "
                     f"colours up to +-{self.color_scale:.3g}")
        if self.nonfinite:
            text += f"; {self.nonfinite} NaN/Inf"
        return text


@dataclass
class GateHistogram:
    """Value counts of each role of one gate over shared bins ``edges``."""

    gate: str
    edges: np.ndarray
    counts: dict[str, np.ndarray]   # role -> counts per bin


@dataclass
class CellFigures:
    cell: GruCell
    blocks: list[BlockFigure]
    histograms: list[GateHistogram]
    health: CellHealth


def downsample(values: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``values`` (2-D) as the means of tiles so that no side exceeds ``max_side``; NaN marks a tile
    holding any NaN or Inf. Returns the drawn array and the tile shape."""
    rows, cols = values.shape
    fr, fc = max(1, math.ceil(rows / max_side)), max(1, math.ceil(cols / max_side))
    finite = np.isfinite(values)
    if (fr, fc) == (1, 1):
        return np.where(finite, values, np.nan), (1, 1)
    out_r, out_c = math.ceil(rows / fr), math.ceil(cols / fc)
    sums = np.zeros((out_r * fr, out_c * fc))
    counts = np.zeros_like(sums)
    bad = np.zeros(sums.shape, dtype=bool)
    kept = np.where(finite, values, 0.0)
    peak = float(np.abs(kept).max()) or 1.0
    sums[:rows, :cols] = kept / peak  # |values| <= 1: a tile's sum cannot overflow
    counts[:rows, :cols] = finite
    bad[:rows, :cols] = ~finite

    def pool(a, how):
        return how(a.reshape(out_r, fr, out_c, fc), axis=(1, 3))

    with np.errstate(invalid="ignore"):
        drawn = pool(sums, np.sum) / pool(counts, np.sum) * peak
    drawn[pool(bad, np.any)] = np.nan
    return drawn, (fr, fc)


def block_figure(block: Block, values: np.ndarray, max_side: int) -> BlockFigure:
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.asarray(values, dtype=np.float64)
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    finite = np.isfinite(a2)
    scale = float(np.abs(a2[finite]).max()) if finite.any() else 0.0
    drawn, tile = downsample(a2, max_side)
    color_scale = scale
    if tile != (1, 1):
        # tile means of weights centred on zero are far smaller than the largest weight: colour
        # them on their own range, or every large block would be drawn white
        means = np.abs(drawn[np.isfinite(drawn)])
        color_scale = float(means.max()) if means.size else 0.0
    return BlockFigure(block, drawn, tile, scale, color_scale, int(a2.size - finite.sum()))


def gate_histograms(blocks: dict, bins: int = HISTOGRAM_BINS) -> list[GateHistogram]:
    out = []
    for gate in GATES:
        parts = {role: np.asarray(blocks[(gate, role)], dtype=np.float64).ravel()
                 for role in ROLES if (gate, role) in blocks}
        finite = {role: v[np.isfinite(v)] for role, v in parts.items()}
        values = [v for v in finite.values() if v.size]
        if not values:
            continue
        lo = min(float(v.min()) for v in values)
        hi = max(float(v.max()) for v in values)
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges = 2.0 * np.linspace(lo / 2.0, hi / 2.0, bins + 1)  # halves: hi - lo may not fit a float
        out.append(GateHistogram(gate, edges, {role: np.histogram(v, edges)[0] for role, v in finite.items()}))
    return out


def cell_figures(cell: GruCell, blocks: dict, max_side: int, step=None) -> CellFigures:
    """Everything drawn for one cell; ``step()`` is called after the health run and after each block."""
    step = step or (lambda: None)
    health = cell_health(cell, blocks)
    step()
    figs = []
    for b in cell.blocks:
        figs.append(block_figure(b, blocks[(b.gate, b.role)], max_side))
        step()
    return CellFigures(cell, figs, gate_histograms(blocks), health)


def tau_labels() -> list[str]:
    """Labels of the tau histogram's bins: ``1-2``, ..., ``>=1000``."""
    def short(v: float) -> str:
        return f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"

    return [f">={short(lo)}" if math.isinf(hi) else f"{short(lo)}-{short(hi)}" for lo, hi in zip(TAU_EDGES, TAU_EDGES[1:])]


def summary_line(cell: GruCell) -> str:
    if cell.activation and cell.recurrent_activation:
        acts = f"activations {cell.recurrent_activation} / {cell.activation} ({cell.config_source})"
    else:
        acts = "activations not recorded in the file"
    return (f"{cell.layout}, {cell.input_size} -> {cell.units} units, "
            f"reset {'after' if cell.reset_after else 'before'} the recurrent matmul, {cell.dtype}, "
            f"{cell.parameters:,} parameters, {acts}")
