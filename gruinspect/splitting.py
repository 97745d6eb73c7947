"""`split`: write every block as a plain array file plus a manifest, atomically.

Output goes to a staging folder beside the target and is renamed into place only when every file
and the manifest are written (:class:`gruinspect.output.OutputFolder`), so a failure leaves
nothing behind and an existing folder is replaced only with ``force``, in one step.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .blocks import Sink, blocks_by_tensor, iter_blocks, select_cells, stream_blocks
from .errors import UsageError
from .listing import open_cells
from .output import MANIFEST, OutputFolder, array_record, check_output_folder, write_manifest

FORMATS = ("npy", "npz")
__all__ = ["FORMATS", "MANIFEST", "SplitResult", "check_output_folder", "safe_name", "split", "unique_names"]


class _HashingWriter:
    """A write-only file wrapper that hashes what passes through it."""

    def __init__(self, f):
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        return self._f.write(data)


def safe_name(cell_name: str) -> str:
    """A single path component from a scope: no separators, no `..`, nothing hidden, ASCII only."""
    parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in cell_name.split("/") if p]
    name = "__".join(p.strip(".") or "_" for p in parts) or "cell"
    return name[:150]


def unique_names(names: list[str]) -> list[str]:
    """The names made distinct (case-insensitively) by suffixes -2, -3...: ``x, x, x-2 -> x, x-2, x-2-2``."""
    taken: set[str] = set()  # lower case: case-insensitive file systems
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def _as_written(values: np.ndarray, dtype: str) -> np.ndarray:
    # bfloat16 is not a numpy dtype other tools read; float32 holds every bfloat16 exactly.
    return values.astype(np.float32) if dtype == "bfloat16" else values


@dataclass
class SplitResult:
    out: str
    manifest: dict
    problems: list[str] = field(default_factory=list)  # reader warnings, printed on stderr

    @property
    def files(self) -> int:
        return sum(len(c["arrays"]) for c in self.manifest["cells"])


def split(path: str, out: str, *, patterns=None, fmt: str = "npy", names: bool = False,
          force: bool = False, progress=None) -> SplitResult:
    """Write each selected cell's blocks under ``out`` and return the manifest written.

    ``progress(done_blocks, total_blocks)`` is called as blocks are written, when given.
    """
    if fmt not in FORMATS:
        raise UsageError(f"Unsupported output format {fmt!r}; use one of {', '.join(FORMATS)}.")
    check_output_folder(out, force, [path])
    with open_cells(path) as (store, inventory), OutputFolder(out, force=force) as staging:
        cells = select_cells(inventory.cells, patterns)
        manifest = _write_all(store, inventory, cells, staging.path, fmt, names, progress)
        staging.commit()
    return SplitResult(out, manifest, inventory.problems_now())


def _write_all(store, inventory, cells, tmp, fmt, names, progress) -> dict:
    slugs = unique_names([safe_name(c.name) for c in cells])
    entries = {}
    zips = {}
    total = sum(len(c.blocks) for c in cells)
    done = 0
    for slug, cell in zip(slugs, cells):
        entry = cell.summary()
        entry["arrays"] = []
        entries[id(cell)] = (slug, entry)
        if fmt == "npy":
            os.mkdir(os.path.join(tmp, slug))
        else:
            import zipfile  # only for npz: start-up time

            entry["file"] = f"{slug}.npz"
            zips[id(cell)] = zipfile.ZipFile(os.path.join(tmp, entry["file"]), "w", zipfile.ZIP_STORED)
    if fmt == "npy":
        # Blocks are written by worker threads in parallel, each stored tensor streamed from the
        # file once and every block hashed as it is written (blocks.stream_blocks); the manifest
        # keeps the sequential order.
        def open_sink(cell, block, dtype):
            slug = entries[id(cell)][0]
            path = os.path.join(tmp, slug, f"{block.key}.npy")
            alias = os.path.join(tmp, slug, f"{block.code_name}.npy") if names else None
            return _open_npy(path, block.shape, dtype, alias=alias)

        results = stream_blocks(store, cells, open_sink, progress=progress)
        for cell, written in zip(cells, results):
            slug, entry = entries[id(cell)]
            blocks = [b for bs in blocks_by_tensor(cell).values() for b in bs]
            for block, (digest, dtype) in zip(blocks, written):
                entry["arrays"].append(array_record(block, dtype, cell.dtype, file=f"{slug}/{block.key}.npy",
                                                    sha256=digest,
                                                    alias=f"{slug}/{block.code_name}.npy" if names else None))
    try:
        for cell, block, values in (iter_blocks(store, cells) if fmt == "npz" else ()):
            slug, entry = entries[id(cell)]
            values = _as_written(values, cell.dtype)
            members = [f"{block.key}.npy"] + ([f"{block.code_name}.npy"] if names else [])
            digests = []
            for member in members:
                with zips[id(cell)].open(member, "w", force_zip64=True) as f:
                    writer = _HashingWriter(f)
                    np.lib.format.write_array(writer, values, allow_pickle=False)
                digests.append(writer.sha256.hexdigest())
            entry["arrays"].append(array_record(block, str(values.dtype), cell.dtype, file=entry["file"],
                                                member=members[0], sha256=digests[0],
                                                alias=members[1] if names else None))
            done += 1
            if progress:
                progress(done, total)
    finally:
        for zf in zips.values():
            zf.close()
    manifest = write_manifest(tmp, version=__version__, source=inventory.source, fmt=fmt,
                              cells=[entries[id(c)][1] for c in cells])
    return manifest


_WRITE_CHUNK = 4 << 20  # bytes converted or gathered at a time for a block that is not contiguous


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The .npy header ``np.save`` writes for a C-ordered array of this shape and dtype."""
    import io

    d = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)}
    buf = io.BytesIO()
    write_header = getattr(np.lib.format, "_write_array_header", None)
    if write_header is not None:
        write_header(buf, d, None)  # what write_array uses: the oldest version that fits
    else:
        np.lib.format.write_array_header_1_0(buf, d)
    return buf.getvalue()


def _written_dtype(dtype: np.dtype) -> np.dtype:
    # as _as_written: bfloat16 goes out as float32 (lossless)
    return np.dtype(np.float32) if dtype.name == "bfloat16" else dtype


def _open_npy(path: str, shape, dtype: np.dtype, *, alias: str | None = None) -> _NpyFile:
    """The sink (:func:`gruinspect.blocks.stream_blocks`) writing one block to ``path`` as .npy."""
    return _NpyFile(path, shape, dtype, alias)


class _NpyFile(Sink):
    """One block written in .npy format as its rows arrive, bfloat16 as float32, and hashed as written.

    The bytes are exactly those of ``np.save(path, np.ascontiguousarray(_as_written(values)))``,
    produced without a copy of the whole block: contiguous rows go out as they are, anything
    else through a staging buffer of a few MiB; the sha256 is of the bytes handed to the file,
    never read back. ``finish()`` gives ``(sha256, written dtype)`` and, with ``alias``, links
    (or copies) the file there too (``--names``).
    """

    def __init__(self, path: str, shape, dtype: np.dtype, alias: str | None) -> None:
        self.path, self.alias = path, alias
        self.dtype = _written_dtype(np.dtype(dtype))
        header = npy_header(tuple(shape), self.dtype)
        self._digest = hashlib.sha256(header)
        self._f = open(path, "wb")
        self._f.write(header)

    def write(self, piece) -> None:
        for data in _c_order_bytes((piece,), self.dtype):
            self._digest.update(data)
            self._f.write(data)

    def finish(self) -> tuple[str, str]:
        self._f.close()
        if self.alias:
            _link_or_copy(self.path, self.alias)
        return self._digest.hexdigest(), str(self.dtype)

    def abort(self) -> None:
        self._f.close()


def _c_order_bytes(pieces, dtype: np.dtype):
    """The bytes of successive array pieces cast to ``dtype``, in C order, as memoryviews (those
    from the staging buffer are valid until the next one is asked for)."""
    for piece in pieces:
        if not piece.size:
            continue
        if piece.dtype == dtype and piece.flags.c_contiguous:
            yield memoryview(piece.reshape(-1)).cast("B")
            continue
        if piece.ndim < 2:
            piece = piece.reshape(1, -1)
        elif piece.ndim > 2:
            piece = piece.reshape(-1, piece.shape[-1])  # a copy if it must; blocks are 1-D or 2-D
        width = piece.shape[1]
        if piece.strides[1] != piece.itemsize and piece.shape[0] > 1 and width > 1:
            yield from _transposed_bytes(piece, dtype)  # e.g. a PyTorch [3H, I] kernel's block, seen as [I, H]
            continue
        step = max(1, _WRITE_CHUNK // (width * dtype.itemsize))  # rows per pass
        if width * dtype.itemsize > _WRITE_CHUNK:  # very long rows: one row at a time, in parts
            step = _WRITE_CHUNK // dtype.itemsize
            for row in piece:
                for start in range(0, width, step):
                    part = row[start : start + step]
                    out = _staging(part.size, dtype)
                    np.copyto(out, part, casting="unsafe")
                    yield memoryview(out).cast("B")
            continue
        for start in range(0, piece.shape[0], step):
            part = piece[start : start + step]
            out = _staging(part.size, dtype).reshape(part.shape)
            np.copyto(out, part, casting="unsafe")
            yield memoryview(out.reshape(-1)).cast("B")


# Tiles of a column-strided (transposed) piece copied at a time: small enough that the source
# rows a tile touches stay in the CPU caches and TLB, which a whole-row pass over a transposed
# view does not (2x slower on a [2048, 2048] float32 block).
_TILE_ROWS, _TILE_COLS = 64, 256


def _transposed_bytes(piece, dtype: np.dtype):
    """The C-order bytes of a 2-D piece whose rows are strided in memory, a strip of
    :data:`_TILE_ROWS` rows at a time, each strip filled tile by tile."""
    rows, width = piece.shape
    strip = max(1, min(_TILE_ROWS, _WRITE_CHUNK // max(width * dtype.itemsize, 1)))
    for start in range(0, rows, strip):
        part = piece[start : start + strip]
        out = _staging(part.size, dtype).reshape(part.shape)
        for col in range(0, width, _TILE_COLS):
            np.copyto(out[:, col : col + _TILE_COLS], part[:, col : col + _TILE_COLS], casting="unsafe")
        yield memoryview(out.reshape(-1)).cast("B")


_local = threading.local()


def _staging(size: int, dtype: np.dtype) -> np.ndarray:
    """``size`` items of ``dtype`` in a buffer this thread owns and reuses: fresh pages cost more
    than the copy into them on some machines (VMs fault every new page)."""
    nbytes = size * dtype.itemsize
    buf = getattr(_local, "staging", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _local.staging = np.empty(max(nbytes, 1 << 16), dtype=np.uint8)
    return buf[:nbytes].view(dtype)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
