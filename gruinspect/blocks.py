"""Cutting stored tensors into canonical blocks and putting them back together.

Everything here works one stored tensor at a time, so memory stays near the size of the largest
fused tensor however large the file is.
"""
from __future__ import annotations

import fnmatch
import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np

from .cell import Block, GruCell
from .errors import GruInspectError
from .layouts import transform
from .store import TensorStore


def view(block: Block, stored: np.ndarray) -> np.ndarray:
    """The block's values from the whole stored tensor, as a view where possible (no copy)."""
    part = stored[tuple(slice(a, b) for a, b in block.source.index)]
    if block.source.transform:
        part = transform(block.source.transform)[0](part, block)
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


T = TypeVar("T")

# Tensors read whole ahead of the block work may take this much memory on top of the largest one.
READ_AHEAD_BYTES = 32 << 20
# Bytes of stored rows a worker reads at a time when it streams a block.
PIECE_BYTES = 4 << 20
# Worker threads by default: one per CPU, up to this many (memory bandwidth is spent by then,
# and each worker holds a few MiB of buffers).
MAX_THREADS = 4

_local = threading.local()


def _thread_buffer(nbytes: int) -> np.ndarray:
    """A byte buffer of at least ``nbytes`` owned by this thread and reused: touching fresh
    memory costs more than reading the file on some machines (VMs fault every new page)."""
    buf = getattr(_local, "buffer", None)
    if buf is None or buf.size < nbytes:
        buf = _local.buffer = np.empty(max(nbytes, PIECE_BYTES), dtype=np.uint8)
    return buf


class BlockData:
    """The values of one block as :func:`map_blocks` hands them to a worker.

    Either a view into a stored tensor already in memory, or rows read on demand from the file
    (a store's ``row_reader``). :meth:`pieces` yields the block in row ranges, C order, which
    is how a worker streams a huge block through a few MiB; :meth:`array` gives it whole.
    """

    __slots__ = ("block", "shape", "dtype", "_stored", "_reader")

    def __init__(self, block: Block, *, stored: np.ndarray | None = None, reader=None):
        self.block = block
        self.shape = tuple(block.shape)
        self._stored = stored
        self._reader = reader
        self.dtype = stored.dtype if stored is not None else reader.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def pieces(self, max_bytes: int = PIECE_BYTES) -> Iterator[np.ndarray]:
        """Successive row ranges of the block (views, each valid until the next is asked for)."""
        if self._stored is not None:
            values = view(self.block, self._stored)
            if values.ndim < 2:
                yield values
                return
            step = max(1, max_bytes // max(values[0].nbytes, 1))
            for start in range(0, values.shape[0], step):
                yield values[start : start + step]
            return
        reader, index = self._reader, self.block.source.index
        if len(reader.shape) == 1:
            (start, stop), = index
            step = max(1, max_bytes // reader.dtype.itemsize)
            buf = _thread_buffer(min(step, stop - start) * reader.dtype.itemsize)
            for a in range(start, stop, step):
                yield reader.read_rows(a, min(a + step, stop), buf)
            return
        (r0, r1), (c0, c1) = index
        step = max(1, max_bytes // max(reader.row_bytes, 1))
        buf = _thread_buffer(min(step, r1 - r0) * reader.row_bytes)
        for a in range(r0, r1, step):
            yield reader.read_rows(a, min(a + step, r1), buf)[:, c0:c1]

    def array(self) -> np.ndarray:
        """The whole block (a view when the stored tensor is in memory)."""
        if self._stored is not None:
            return view(self.block, self._stored)
        out = np.empty(self.shape, dtype=self.dtype)
        pos = 0
        for piece in self.pieces():
            out[pos : pos + len(piece)] = piece
            pos += len(piece)
        return out


def _streamable(reader, blocks: list[Block]) -> bool:
    """Whether every block is a plain slice of a 1-D or 2-D stored tensor (no transform)."""
    if reader is None or len(reader.shape) not in (1, 2):
        return False
    return all(not b.source.transform and len(b.source.index) == len(reader.shape)
               and tuple(b.shape) == tuple(z - a for a, z in b.source.index) for b in blocks)


def _default_threads() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_THREADS))


def map_blocks(store: TensorStore, cells: list[GruCell], func: Callable[[GruCell, Block, BlockData], T], *,
               threads: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[list[T]]:
    """``func(cell, block, data)`` for every block, on worker threads; the results per cell.

    ``data`` is a :class:`BlockData`. Results come back in :func:`iter_blocks` order: per cell,
    by stored tensor, then block. Up to ``threads`` workers run at once (default: one per CPU
    this process may use, at most :data:`MAX_THREADS`).
    When the store offers ``row_reader(name)`` (TF bundles do), each worker reads just the rows
    of its block, a few MiB at a time, and one more task per tensor checks its checksum: memory
    stays at a few MiB per worker however large the tensors. Other tensors are read whole on the
    calling thread, ahead of the workers but never more than the largest tensor plus
    :data:`READ_AHEAD_BYTES` at once. ``func`` should spend its time in code that releases the
    GIL (numpy on large arrays, hashing, file writes) for the threads to help. The first
    exception raised by a read, a checksum or ``func`` cancels what has not started and
    propagates once the running calls have finished.
    """
    return _schedule(store, cells, func, None, threads, progress)


def stream_blocks(store: TensorStore, cells: list[GruCell], open_sink: Callable[[GruCell, Block, np.dtype], Sink],
                  *, threads: int | None = None, progress: Callable[[int, int], None] | None = None) -> list[list]:
    """Every block's values pushed through a sink; the sinks' results per cell, as :func:`map_blocks`.

    ``open_sink(cell, block, dtype)`` returns a :class:`Sink`; it is given the block's values
    as successive row ranges (``write``), in order, then ``finish()`` gives the result (and
    ``abort()`` is called instead when anything fails). Unlike :func:`map_blocks`, a tensor
    streamed from the file (``row_reader``) is read once, a few MiB of rows at a time, by one
    worker that checks its checksum on those same bytes and hands every block its part: no
    second read per block or for the checksum. Workers take the largest tensors first.
    """
    def per_block(cell, block, data):
        sink = open_sink(cell, block, data.dtype)
        try:
            for piece in data.pieces():
                sink.write(piece)
            return sink.finish()
        except BaseException:
            sink.abort()
            raise

    return _schedule(store, cells, per_block, lambda reader, items: _stream_tensor(reader, items, open_sink),
                     threads, progress)


class Sink:
    """What :func:`stream_blocks` pushes one block's values into (the interface; duck-typed)."""

    def write(self, piece: np.ndarray) -> None:
        """The next rows of the block (a view, valid only during the call)."""
        raise NotImplementedError

    def finish(self):
        """All rows were written: the block's result."""
        raise NotImplementedError

    def abort(self) -> None:
        """Something failed: release what the sink holds (may follow ``finish``)."""


# Bytes of stored rows read at a time when one worker streams a whole tensor to its blocks:
# small enough that the rows are still in the CPU cache when each block hashes or copies them.
STREAM_BYTES = 1 << 20


def _stream_tensor(reader, items: list, open_sink) -> list:
    """Read the rows of one streamable tensor once and feed each block its part (see stream_blocks)."""
    one_d = len(reader.shape) == 1
    checker = getattr(reader, "checker", None)
    check = checker() if checker is not None else None
    sinks, parts = [], []  # parts: (first row, end row, column slice or None, sink)
    try:
        for _, _, cell, block in items:
            sinks.append(open_sink(cell, block, reader.dtype))
            index = block.source.index
            whole = one_d or tuple(index[1]) == (0, reader.shape[1])
            parts.append((index[0][0], index[0][1], None if whole else slice(*index[1]), sinks[-1]))
        if check is None:  # a checksum of its own (or none): the blocks' rows are all that is read
            reader.verify(_thread_buffer(PIECE_BYTES)[:PIECE_BYTES])
            lo, hi = min(p[0] for p in parts), max(p[1] for p in parts)
        else:  # every row goes through the checksum, in order
            lo, hi = 0, reader.shape[0]
        step = max(1, STREAM_BYTES // max(reader.row_bytes, 1))
        buf = _thread_buffer(min(step, max(hi - lo, 1)) * reader.row_bytes)
        for a in range(lo, hi, step):
            b = min(a + step, hi)
            rows = reader.read_rows(a, b, buf)
            if check is not None:
                check.update(rows)
            for r0, r1, cols, sink in parts:
                if r0 < b and a < r1:
                    piece = rows[max(r0, a) - a : min(r1, b) - a]
                    sink.write(piece if cols is None else piece[:, cols])
        if check is not None:
            check.finish()
        return [sink.finish() for sink in sinks]
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise


def _schedule(store, cells, per_block, per_tensor, threads, progress) -> list[list]:
    """map_blocks and stream_blocks: ``per_tensor(reader, items)`` (when given) takes a whole
    streamable tensor and returns its items' results; else ``per_block`` runs once per block."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    infos = store.infos()
    row_reader = getattr(store, "row_reader", None)
    plan = []  # (tensor, nbytes, [(cell index, result slot, cell, block)])
    counts = []
    for ci, cell in enumerate(cells):
        slot = 0
        for tensor, blocks in blocks_by_tensor(cell).items():
            info = infos.get(tensor)
            plan.append((tensor, info.nbytes if info else 0, [(ci, slot + i, cell, b) for i, b in enumerate(blocks)]))
            slot += len(blocks)
        counts.append(slot)
    results: list[list] = [[None] * n for n in counts]
    total = sum(counts)
    limit = max((nbytes for _, nbytes, _ in plan), default=0) + READ_AHEAD_BYTES
    pending: dict = {}  # future -> (plan index, what: a cell index, None for a checksum, or "tensor", slot)
    left: dict[int, int] = {}  # plan index -> calls not finished, for tensors held in memory
    held = 0  # bytes of the tensors in ``left``
    done = 0

    def collect(block: bool) -> None:
        nonlocal held, done
        if block:
            finished = wait(list(pending), return_when=FIRST_COMPLETED).done
        else:
            finished = [f for f in pending if f.done()]
        for future in finished:
            pi, ci, slot = pending.pop(future)
            value = future.result()
            if pi in left:
                left[pi] -= 1
                if not left[pi]:
                    del left[pi]
                    held -= plan[pi][1]
            if ci is None:
                continue
            pairs = zip(plan[pi][2], value) if ci == "tensor" else (((ci, slot, None, None), value),)
            for (cj, sj, _, _), v in pairs:
                results[cj][sj] = v
                done += 1
                if progress:
                    progress(done, total)

    def verify(reader) -> None:
        reader.verify(_thread_buffer(PIECE_BYTES)[:PIECE_BYTES])

    pool = ThreadPoolExecutor(max_workers=threads or _default_threads(), thread_name_prefix="gruinspect")
    try:
        # Largest first, so that the last task to finish is a small one.
        for pi in sorted(range(len(plan)), key=lambda i: -plan[i][1]):
            tensor, nbytes, items = plan[pi]
            collect(block=False)
            reader = row_reader(tensor) if row_reader else None
            if _streamable(reader, [b for *_, b in items]):
                if per_tensor is not None:
                    pending[pool.submit(per_tensor, reader, items)] = (pi, "tensor", 0)
                    continue
                pending[pool.submit(verify, reader)] = (pi, None, 0)
                for ci, slot, cell, block in items:
                    pending[pool.submit(per_block, cell, block, BlockData(block, reader=reader))] = (pi, ci, slot)
                continue
            while left and held + nbytes > limit:
                collect(block=True)
            stored = store.read(tensor)
            stored.flags.writeable = False  # shared by the workers
            left[pi] = len(items)
            held += nbytes
            for ci, slot, cell, block in items:
                pending[pool.submit(per_block, cell, block, BlockData(block, stored=stored))] = (pi, ci, slot)
            del stored  # the workers' BlockData keep it alive until their calls end
        while pending:
            collect(block=True)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


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
        shape = cell.owned_shape(tensor)
        start = [a for a, _ in cell.regions.get(tensor, ((0, 0),) * len(shape))]
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
            index = tuple(slice(a - s, b - s) for (a, b), s in zip(block.source.index, start))
            target_shape = tuple(b - a for a, b in block.source.index)
            if block.source.transform:
                values = transform(block.source.transform)[1](values, target_shape)
            fused[index] = values.reshape(target_shape)
            covered[index] = True
        if not covered.all():
            raise GruInspectError(f"The blocks of cell {cell.name} do not cover all of {tensor}.")
        out[tensor] = fused
    return out


def owned(cell: GruCell, tensor: str, stored: np.ndarray) -> np.ndarray:
    """The part of a stored tensor the cell owns (all of it unless the cell has a region for it):
    what :func:`fuse` rebuilds for that tensor."""
    region = cell.regions.get(tensor)
    return stored if region is None else stored[tuple(slice(a, b) for a, b in region)]


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
