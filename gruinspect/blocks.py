"""Cutting stored tensors into canonical blocks and putting them back together.

Everything here works one stored tensor at a time, so memory stays near the size of the largest
fused tensor however large the file is.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .cell import Block, GruCell
from .errors import GruInspectError
from .store import TensorStore


def _cudnn_kernel(a: np.ndarray, block: Block) -> np.ndarray:
    # cuDNN reads each flattened Keras CuDNNGRU kernel block as [units, rows] row-major (§6.5).
    rows, units = block.shape
    return a.reshape(units, rows).T


def _cudnn_kernel_inverse(b: np.ndarray, stored_shape: tuple[int, ...]) -> np.ndarray:
    return np.ascontiguousarray(b.T).reshape(stored_shape)


# name -> (stored slice -> block, block -> stored slice)
TRANSFORMS: dict[str, tuple[Callable, Callable]] = {
    "cudnn_kernel": (_cudnn_kernel, _cudnn_kernel_inverse),
}


def view(block: Block, stored: np.ndarray) -> np.ndarray:
    """The block's values from the whole stored tensor, as a view where possible (no copy)."""
    part = stored[tuple(slice(a, b) for a, b in block.source.index)]
    if block.source.transform:
        part = TRANSFORMS[block.source.transform][0](part, block)
    return part.reshape(block.shape)


def extract(block: Block, stored: np.ndarray) -> np.ndarray:
    """The block's values as a new contiguous array."""
    return np.ascontiguousarray(view(block, stored))


def blocks_by_tensor(cell: GruCell) -> dict[str, list[Block]]:
    """The cell's blocks grouped by the stored tensor they come from, in first-use order."""
    out: dict[str, list[Block]] = {}
    for block in cell.blocks:
        out.setdefault(block.source.tensor, []).append(block)
    return out


def iter_blocks(store: TensorStore, cells: Iterable[GruCell], *, copy: bool = True
                ) -> Iterator[tuple[GruCell, Block, np.ndarray]]:
    """Yield ``(cell, block, values)`` reading each stored tensor once and holding one at a time.

    With ``copy=False`` the values are views into the stored tensor, valid until the next one.
    """
    take = extract if copy else view
    for cell in cells:
        for tensor, blocks in blocks_by_tensor(cell).items():
            stored = store.read(tensor)
            for block in blocks:
                yield cell, block, take(block, stored)
            del stored


def read_blocks(store: TensorStore, cell: GruCell) -> dict[tuple[str, str], np.ndarray]:
    """All blocks of one cell as ``{(gate, role): array}``."""
    return {(b.gate, b.role): values for _, b, values in iter_blocks(store, [cell])}


def fuse(cell: GruCell, blocks: dict[tuple[str, str], np.ndarray]) -> dict[str, np.ndarray]:
    """Rebuild the cell's stored tensors from its blocks: the exact inverse of the split.

    Raises :class:`GruInspectError` when a block is missing or does not fit, or when the blocks
    leave part of a stored tensor uncovered.
    """
    out: dict[str, np.ndarray] = {}
    for tensor, tblocks in blocks_by_tensor(cell).items():
        shape = cell.shapes[tensor]
        first = blocks.get((tblocks[0].gate, tblocks[0].role))
        if first is None:
            raise GruInspectError(f"Block {tblocks[0].gate} {tblocks[0].role} of cell {cell.name} is missing.")
        fused = np.zeros(shape, dtype=first.dtype)
        covered = np.zeros(shape, dtype=bool)
        for block in tblocks:
            values = blocks.get((block.gate, block.role))
            if values is None:
                raise GruInspectError(f"Block {block.gate} {block.role} of cell {cell.name} is missing.")
            if tuple(values.shape) != tuple(block.shape):
                raise GruInspectError(
                    f"Block {block.gate} {block.role} of cell {cell.name} has shape {list(values.shape)}, "
                    f"expected {list(block.shape)}."
                )
            index = tuple(slice(a, b) for a, b in block.source.index)
            target_shape = tuple(b - a for a, b in block.source.index)
            if block.source.transform:
                values = TRANSFORMS[block.source.transform][1](values, target_shape)
            fused[index] = values.reshape(target_shape)
            covered[index] = True
        if not covered.all():
            raise GruInspectError(f"The blocks of cell {cell.name} do not cover all of {tensor}.")
        out[tensor] = fused
    return out


def select_cells(cells: list[GruCell], patterns: Iterable[str] | None) -> list[GruCell]:
    """Cells whose name matches any glob in ``patterns`` (all cells when there are none)."""
    patterns = list(patterns or ())
    if not patterns:
        return list(cells)
    chosen = [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    if not chosen:
        names = ", ".join(c.name for c in cells) or "none"
        raise GruInspectError(f"No cell matches {' or '.join(patterns)}; the cells are: {names}.")
    return chosen
