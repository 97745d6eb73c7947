"""Stores whose tensors are strided runs of bytes at known file offsets (PyTorch, safetensors).

Nothing is read when a store opens but the file's own index; :meth:`OffsetStore.read` reads the
bytes one tensor spans with positional reads (``os.pread``: safe from any thread) and lays them
out by the tensor's stride, so views into one shared storage (cuDNN's flat weight buffer) read
just their own part.
"""
from __future__ import annotations

import builtins
import math
import os
from typing import NamedTuple

from ..errors import InvalidFileError, TruncatedFileError
from ..store import TensorInfo, TensorStore, numpy_dtype
from ._tf_types import ITEMSIZE  # bytes per element without importing numpy (`list` never does)


class Placed(NamedTuple):
    """One tensor: ``dtype`` elements of a storage starting at byte ``base`` of the file; element
    ``i`` of the tensor (multi-index) is storage element ``offset + sum(i_k * stride_k)``."""

    base: int
    dtype: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def span(self) -> int:
        """Storage elements from the first to one past the last element the tensor uses."""
        if any(d == 0 for d in self.shape):
            return 0
        return 1 + sum((d - 1) * s for d, s in zip(self.shape, self.stride))

    @property
    def contiguous(self) -> bool:
        expected, step = [], 1
        for d in reversed(self.shape):
            expected.append(step)
            step *= d
        return all(d == 1 or s == e for d, s, e in zip(self.shape, self.stride, reversed(expected)))


def c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, step = [], 1
    for d in reversed(shape):
        out.append(step)
        step *= d
    return tuple(reversed(out))


class OffsetStore(TensorStore):
    """A :class:`TensorStore` over :class:`Placed` tensors of one file."""

    def __init__(self, path: str, fmt: str) -> None:
        super().__init__()
        self.path, self.format = path, fmt
        self.big_endian = False
        self._placed: dict[str, Placed] = {}
        self._infos: dict[str, TensorInfo] = {}
        try:
            self._file = builtins.open(path, "rb")
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {path}: {exc.strerror or exc}.") from None
        self.note_file(path)
        self.size = os.fstat(self._file.fileno()).st_size

    def add(self, name: str, placed: Placed, limit: int) -> None:
        """Record a tensor after checking it lies within its storage (``limit`` bytes from
        ``placed.base``) and within the file."""
        itemsize = ITEMSIZE[placed.dtype]
        end = (placed.offset + placed.span) * itemsize
        if placed.span and end > limit:
            raise InvalidFileError(
                f"Invalid {self.format} file {self.path}: tensor {name} of shape {list(placed.shape)} needs "
                f"{end} bytes of its storage, which holds {limit}.")
        if placed.base + limit > self.size:
            raise TruncatedFileError(
                f"Unexpected end of file {self.path}: tensor {name} lies past the end; the file may be truncated.")
        self._placed[name] = placed
        self._infos[name] = TensorInfo(name, placed.shape, placed.dtype)

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def read(self, name: str):
        import numpy as np

        placed = self._placed[name]
        dtype = numpy_dtype(placed.dtype)
        span = placed.span
        if not span:
            return np.zeros(placed.shape, dtype)
        flat = np.empty(span, dtype)
        self._pread(memoryview(flat.view(np.uint8)), placed.base + placed.offset * dtype.itemsize, name)
        if self.big_endian and dtype.itemsize > 1:
            if dtype.kind == "c":
                flat.byteswap(inplace=True)
            else:
                flat.view(f"u{dtype.itemsize}").byteswap(inplace=True)
        if placed.contiguous:
            return flat[: math.prod(placed.shape)].reshape(placed.shape)
        strides = tuple(s * dtype.itemsize for s in placed.stride)
        return np.ascontiguousarray(np.lib.stride_tricks.as_strided(flat, placed.shape, strides, writeable=False))

    def _pread(self, view: memoryview, position: int, name: str) -> None:
        fd, total = self._file.fileno(), 0
        while total < len(view):
            n = os.preadv(fd, [view[total:]], position + total) if hasattr(os, "preadv") else None
            if n is None:  # pragma: no cover - Windows
                self._file.seek(position + total)
                n = self._file.readinto(view[total:]) or 0
            if not n:
                raise TruncatedFileError(
                    f"Unexpected end of file {self.path} while reading tensor {name}; the file may be truncated.")
            total += n
        self.bytes_read += total

    def close(self) -> None:
        self._file.close()
