"""``.safetensors`` files, read by a small reader of their own (huggingface/safetensors, README "Format").

    8 bytes      little-endian u64 N, the header length
    N bytes      JSON {"<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
                 "__metadata__": {str: str}} (possibly padded with spaces)
    the rest     the tensors' bytes, row-major little-endian; offsets count from here

Why not the ``safetensors`` package: reading then needs no extra install (the base tool reads every
format), the checks below give one-line errors that name the tensor, and tensors read by offset
one at a time (``list`` reads only the header). The package's own rules are kept: the header is
at most 100 MB, offsets are in order without holes or overlaps and cover the data exactly, and
each tensor's byte count matches its shape and dtype.
"""
from __future__ import annotations

import builtins
import math
import os

from ..errors import InvalidFileError, TruncatedFileError, UnsupportedError
from . import _json
from ._offsets import OffsetStore, Placed, c_strides
from ._tf_types import ITEMSIZE

FORMAT = "safetensors"
FORMATS = (FORMAT,)
MAX_HEADER_BYTES = 100_000_000  # safetensors' MAX_HEADER_SIZE

DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
}


def sniff(path: str) -> str | None:
    """"safetensors" when PATH starts with a plausible header length followed by ``{``."""
    if not os.path.isfile(path):
        return None
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(9)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    if len(head) < 9 or head[8:9] != b"{":
        return None
    n = int.from_bytes(head[:8], "little")
    return FORMAT if 2 <= n <= MAX_HEADER_BYTES and n + 8 <= size else None


def open(path: str, fmt: str | None = None) -> OffsetStore:  # noqa: A001 - the reader API is sniff()/open()
    store = OffsetStore(path, FORMAT)
    try:
        _read_header(store)
    except BaseException:
        store.close()
        raise
    return store


def _bad(path: str, what: str) -> InvalidFileError:
    return InvalidFileError(f"Invalid safetensors file {path}: {what}.")


def _read_header(store: OffsetStore) -> None:
    path = store.path
    f = store._file
    head = f.read(8)
    if len(head) < 8:
        raise TruncatedFileError(f"Unexpected end of file {path}; the file may be truncated.")
    n = int.from_bytes(head, "little")
    if n > MAX_HEADER_BYTES:
        raise UnsupportedError(f"Unsupported safetensors file {path}: its header claims {n} bytes, more than "
                               f"the {MAX_HEADER_BYTES} safetensors allows.")
    if 8 + n > store.size:
        raise TruncatedFileError(f"Unexpected end of file {path}: the header claims {n} bytes; the file may be "
                                 f"truncated.")
    try:
        header = _json.loads(f.read(n).decode("utf-8"), path, "its header")
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(path, f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(path, "the header is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise _bad(path, "__metadata__ is not a string-to-string map")
        store.metadata["safetensors_metadata"] = dict(meta)
    base = 8 + n
    data_size = store.size - base
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict):
            raise _bad(path, f"tensor {name} is not described by an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPES:
            raise UnsupportedError(f"Unsupported safetensors file {path}: tensor {name} has dtype {dtype!r:.20}.")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise _bad(path, f"tensor {name} has shape {shape!r:.60}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) and not isinstance(o, bool)
                                                                       for o in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise _bad(path, f"tensor {name} has data_offsets {offsets!r:.60}")
        nbytes = math.prod(shape) * ITEMSIZE[DTYPES[dtype]]
        if offsets[1] - offsets[0] != nbytes:
            raise _bad(path, f"tensor {name} of shape {shape} and dtype {dtype} needs {nbytes} bytes, its offsets "
                             f"give {offsets[1] - offsets[0]}")
        if offsets[1] > data_size:
            raise TruncatedFileError(f"Unexpected end of file {path}: tensor {name} ends at byte "
                                     f"{base + offsets[1]} of {store.size}; the file may be truncated.")
        spans.append((offsets[0], offsets[1], name))
        store.add(name, Placed(base + offsets[0], DTYPES[dtype], 0, tuple(shape), c_strides(tuple(shape))), nbytes)
    end = 0
    for begin, stop, name in sorted(spans):
        if begin != end:
            raise _bad(path, f"tensor {name} starts at data byte {begin}, where {end} was expected (a hole or an "
                             f"overlap)")
        end = stop
    if end != data_size:
        raise _bad(path, f"the tensors cover {end} data bytes but the file holds {data_size}")
