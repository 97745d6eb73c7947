"""Partitioned TF variables: slice extents, their OrderedCode table keys, and overlap checks.

A partitioned variable (``tf.compat.v1.get_variable(partitioner=...)``) is saved as one entry
holding the full shape and its slices' extents (TensorSliceProto), plus one entry per slice
under a binary key (TF `core/util/saved_tensor_slice_util.cc` ``EncodeTensorNameSlice``,
`core/lib/strings/ordered_code.cc`): ``OrderedCode(0) . name . rank . (start, length)*``, where
a full dimension's length is -1. The V2 bundle and V1 readers share these.
"""
from __future__ import annotations

import re

from ..errors import InvalidFileError
from . import _wire


def shape_from_proto(fields: dict) -> tuple[int, ...]:
    if _wire.get_int(fields, 3):
        raise _wire.WireError("the shape has unknown rank")
    dims = tuple(_wire.get_int(d, 1) for d in _wire.get_messages(fields, 2))
    if any(d < 0 for d in dims):
        raise _wire.WireError(f"negative dimension in shape {list(dims)}")
    return dims


def slice_region(name: str, extents: list[tuple[int, int | None]], shape: tuple[int, ...],
                 where: str) -> tuple[tuple[int, int], ...]:
    """``(start, stop)`` per dimension of one slice of ``name``, checked to lie inside ``shape``."""
    if len(extents) != len(shape):
        raise InvalidFileError(f"Invalid slice of tensor {name} in {where}: rank mismatch.")
    index = []
    for (start, length), dim in zip(extents, shape):
        stop = dim if length is None else start + length
        if not 0 <= start <= stop <= dim:
            raise InvalidFileError(
                f"Invalid slice of tensor {name} in {where}: extent {start}+{length} outside dimension {dim}."
            )
        index.append((start, stop))
    return tuple(index)


def slice_from_proto(fields: dict) -> list[tuple[int, int | None]]:
    """TensorSliceProto -> [(start, length or None for the full dimension)]."""
    out = []
    for ext in _wire.get_messages(fields, 1):
        start = _wire.get_int(ext, 1)
        length = _wire.get_int(ext, 2) if 2 in ext else None
        out.append((start, length))
    return out


def _slice_entry_name(key: bytes) -> str:
    """A readable name for a slice entry's binary key: the tensor name plus "(a slice)"."""
    raw = key[1:].split(b"\x00\x01", 1)[0].replace(b"\x00\xff", b"\x00").replace(b"\xff\x00", b"\xff")
    return raw.decode("utf-8", "backslashreplace") + " (a slice)"


def _overlap(boxes: list[tuple[tuple[int, int], ...]], shape: tuple[int, ...]) -> bool:
    """Whether any two non-empty boxes ((start, stop) per dimension) intersect.

    Sweeps along the axis with the most distinct starts, so the usual one-axis partition costs
    one comparison per slice; a crafted index that would make the sweep quadratic is checked
    with a coverage mask instead (one byte per element, less than the data the slices hold).
    """
    boxes = [b for b in boxes if all(a < z for a, z in b)]
    if len(boxes) < 2 or not boxes[0]:
        return len(boxes) > 1
    axis = max(range(len(boxes[0])), key=lambda d: len({b[d][0] for b in boxes}))
    active: list = []
    budget = 1 << 20
    for box in sorted(boxes, key=lambda b: b[axis][0]):
        active = [a for a in active if a[axis][1] > box[axis][0]]
        budget -= len(active)
        if budget < 0:
            break
        for other in active:
            if all(a0 < b1 and b0 < a1 for (a0, a1), (b0, b1) in zip(box, other)):
                return True
        active.append(box)
    else:
        return False
    import numpy as np  # only for crafted indexes: `list` of a real bundle never gets here

    mask = np.zeros(shape, dtype=bool)
    for box in boxes:
        region = tuple(slice(a, z) for a, z in box)
        if mask[region].any():
            return True
        mask[region] = True
    return False


# -- OrderedCode slice keys (TF core/lib/strings/ordered_code.cc) ------------------------------
_HEADER_BITS = [(0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0), (0xFC, 0),
                (0xFE, 0), (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0)]


def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return bytes([len(body)]) + body


def _signed_num_increasing(value: int) -> bytes:
    x = ~value if value < 0 else value
    if x < 64:
        return bytes([(0x80 ^ value) & 0xFF])
    n = x.bit_length() // 7 + 1
    raw = bytearray((value & ((1 << 80) - 1)).to_bytes(10, "big")[-n:])
    raw[0] ^= _HEADER_BITS[n][0]
    raw[1] ^= _HEADER_BITS[n][1]
    return bytes(raw)


_ESCAPES = {b"\x00": b"\x00\xff", b"\xff": b"\xff\x00"}


def _ordered_string(text: bytes) -> bytes:
    return re.sub(b"[\x00\xff]", lambda m: _ESCAPES[m.group()], text) + b"\x00\x01"


def slice_key(name: str, extents: list[tuple[int, int | None]]) -> bytes:
    """The table key of one slice of ``name`` (an absent length encodes as -1, "full")."""
    key = _num_increasing(0) + _ordered_string(name.encode("utf-8")) + _num_increasing(len(extents))
    for start, length in extents:
        key += _signed_num_increasing(start) + _signed_num_increasing(-1 if length is None else length)
    return key
