"""Streaming the rows of one plain tensor of a V2 bundle, from several threads at once."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ._crc import crc32c, mask

if TYPE_CHECKING:
    from .tf_bundle import BundleStore, _Entry


class RowReader:
    """Rows of one plain stored tensor, read by offset, from any thread (:meth:`BundleStore.row_reader`).

    Lets ``stats`` and ``split`` stream a huge tensor through a few MiB instead of reading it
    whole. A 1-D tensor's rows are its elements. Rows are not checksummed one by one:
    :meth:`verify` streams the whole tensor through a buffer and checks its crc32c.
    """

    def __init__(self, store: BundleStore, name: str, entry: _Entry, dtype) -> None:
        self.store, self.name, self._entry = store, name, entry
        self.shape = entry.shape
        self.dtype = dtype
        self.row_bytes = math.prod(entry.shape[1:]) * dtype.itemsize

    def read_rows(self, start: int, stop: int, out):
        """Rows ``start:stop`` read into ``out`` (a C-contiguous array with room for them, any
        dtype); returned as an array of this tensor's dtype viewing ``out``."""
        import numpy as np

        nbytes = (stop - start) * self.row_bytes
        raw = out.reshape(-1).view(np.uint8)[:nbytes]
        if nbytes:
            self.store._read_bytes_into(self.name, self._entry, memoryview(raw), check=False,
                                        start=start * self.row_bytes)
        return raw.view(self.dtype).reshape((stop - start,) + tuple(self.shape[1:]))

    def verify(self, buffer) -> None:
        """Raise :class:`ChecksumError` unless the stored bytes match their crc32c; ``buffer``
        (any writable buffer) sets how much is read at a time."""
        if not self.store.verify_checksums:
            return
        view = memoryview(buffer).cast("B")
        size, pos, crc = self._entry.size, 0, 0
        while pos < size:
            part = view[: min(len(view), size - pos)]
            self.store._read_bytes_into(self.name, self._entry, part, check=False, start=pos)
            crc = crc32c(part, crc)
            pos += len(part)
        if mask(crc) != self._entry.crc:
            self.store._checksum_error(self.name, self._entry)

    def checker(self) -> "_Checksum":
        """The crc32c check fed with the rows as they are read (``update(rows)`` with every row,
        in order, then ``finish()``), so a reader of the whole tensor needs no second pass."""
        return _Checksum(self)


class _Checksum:
    """The stored crc32c of one tensor, computed from its rows as a reader goes (TF checks the
    same masked crc32c over the tensor's bytes: tensorflow/core/util/tensor_bundle/tensor_bundle.cc)."""

    def __init__(self, reader: RowReader) -> None:
        self._reader, self._crc, self._bytes = reader, 0, 0
        self._on = reader.store.verify_checksums

    def update(self, rows) -> None:
        if not self._on:
            return
        data = memoryview(rows).cast("B")
        self._crc = crc32c(data, self._crc)
        self._bytes += len(data)

    def finish(self) -> None:
        """Raise :class:`ChecksumError` unless every byte went through and the crc32c matches."""
        reader = self._reader
        if not self._on:
            return
        if self._bytes != reader._entry.size:
            raise RuntimeError(f"the checksum of {reader.name} was fed {self._bytes} of its {reader._entry.size} bytes")
        if mask(self._crc) != reader._entry.crc:
            reader.store._checksum_error(reader.name, reader._entry)
