"""Streaming the rows of one HDF5 dataset (Keras HDF5 models, Keras 3 weights and archives).

``stats`` and ``split`` go through :func:`gruinspect.blocks.map_blocks`, which reads a block a
few MiB of rows at a time when the store offers ``row_reader(name)``; this is that reader for
datasets read with h5py. Each call reads a hyperslab straight into the caller's buffer
(h5py ``Dataset.read_direct``), so a 400 MB kernel never sits in memory whole. h5py serialises
its calls with one lock: reads from the worker threads take turns, the numpy work between them
runs in parallel.
"""
from __future__ import annotations

import math
import threading

from ..errors import GruInspectError

_STREAMED_KINDS = "fiub"  # plain numbers; bfloat16 (opaque bytes) and strings are read whole


class H5RowReader:
    """Rows of one plain 1-D or 2-D dataset; a 1-D dataset's rows are its elements."""

    def __init__(self, store, name: str, ds, where: str) -> None:
        self.store, self.name, self._ds, self._where = store, name, ds, where
        self.shape = tuple(int(d) for d in ds.shape)
        self.dtype = ds.dtype.newbyteorder("=")
        self.row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        self._lock = threading.Lock()

    @classmethod
    def open(cls, store, name: str, ds, where: str):
        """A reader for ``ds``, or None when it is not a plain numeric 1-D or 2-D dataset."""
        if ds.shape is None or len(ds.shape) not in (1, 2) or ds.dtype.kind not in _STREAMED_KINDS:
            return None
        if ds.dtype.fields or ds.dtype.subdtype:
            return None
        return cls(store, name, ds, where)

    def read_rows(self, start: int, stop: int, out):
        """Rows ``start:stop`` read into ``out`` (C-contiguous, room for them, any dtype), returned
        as an array of this dataset's dtype viewing ``out``."""
        import numpy as np

        nbytes = (stop - start) * self.row_bytes
        dest = out.reshape(-1).view(np.uint8)[:nbytes].view(self.dtype).reshape(
            (stop - start,) + self.shape[1:])
        if nbytes:
            from ._h5 import h5_error

            try:
                self._ds.read_direct(dest, source_sel=np.s_[start:stop])
            except GruInspectError:
                raise
            except Exception as exc:
                raise h5_error(f"{self._where} (tensor {self.name})", exc) from None
            with self._lock:
                self.store.bytes_read += nbytes
        return dest

    def verify(self, buffer) -> None:
        """Nothing to check beyond the reads: h5py checks a dataset's own checksum filter
        (fletcher32), when it has one, as it reads each chunk."""
