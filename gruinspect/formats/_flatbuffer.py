"""A small, bounds-checked FlatBuffers reader: tables, scalars, vectors, strings (no generated code).

FlatBuffers binary format (flatbuffers ``docs/source/internals.md``): the file starts with a
uoffset (u32) to the root table, optionally followed by a 4-byte file identifier. A table starts
with an soffset (i32) back to its vtable; the vtable holds its own size (u16), the table's size
(u16), then one u16 offset per field (0 = absent, use the default). A reference field holds a
uoffset relative to its own position; a vector or string is a u32 length then its elements.
Everything is little-endian. Every read here is checked against the buffer, so a damaged file
gives :class:`FlatBufferError`, never an IndexError or a read past the end.
"""
from __future__ import annotations

import struct

_U16, _U32, _I32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<i"), struct.Struct("<Q")
_SCALARS = {"b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8}


class FlatBufferError(ValueError):
    """The bytes are not a well-formed FlatBuffer of the expected shape."""


class Table:
    """One table at ``pos`` of ``buf``; fields are addressed by their index in the schema."""

    __slots__ = ("buf", "pos", "_vt", "_vt_size")

    def __init__(self, buf, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        _need(buf, pos, 4, "a table")
        vt = pos - _I32.unpack_from(buf, pos)[0]
        _need(buf, vt, 4, "a vtable")
        size = _U16.unpack_from(buf, vt)[0]
        if size < 4 or size % 2:
            raise FlatBufferError(f"vtable at {vt} has size {size}")
        _need(buf, vt, size, "a vtable")
        self._vt, self._vt_size = vt, size

    def _field(self, index: int) -> int:
        """Absolute position of field ``index``, or 0 when it is absent."""
        slot = 4 + 2 * index
        if slot + 2 > self._vt_size:
            return 0
        off = _U16.unpack_from(self.buf, self._vt + slot)[0]
        return self.pos + off if off else 0

    def check_fields(self) -> None:
        """Every field the vtable lists lies inside the table, whose inline size the vtable gives
        (its second u16): a damaged offset is an error here, not a read of another table's bytes."""
        size = _U16.unpack_from(self.buf, self._vt + 2)[0]
        _need(self.buf, self.pos, size, "a table")
        for slot in range(4, self._vt_size, 2):
            off = _U16.unpack_from(self.buf, self._vt + slot)[0]
            if off and not 4 <= off < size:
                raise FlatBufferError(f"field {(slot - 4) // 2} of the table at {self.pos} is at offset {off}, "
                                      f"outside the table's {size} bytes")

    def has(self, index: int) -> bool:
        return bool(self._field(index))

    def scalar(self, index: int, fmt: str, default=0):
        p = self._field(index)
        if not p:
            return default
        _need(self.buf, p, _SCALARS[fmt], "a scalar field")
        return struct.unpack_from("<" + fmt, self.buf, p)[0]

    def _ref(self, index: int) -> int:
        p = self._field(index)
        if not p:
            return 0
        _need(self.buf, p, 4, "an offset field")
        target = p + _U32.unpack_from(self.buf, p)[0]
        if target >= len(self.buf):
            raise FlatBufferError(f"field {index} of the table at {self.pos} points past the end ({target})")
        return target

    def table(self, index: int) -> Table | None:
        p = self._ref(index)
        return Table(self.buf, p) if p else None

    def string(self, index: int, default: str = "") -> str:
        p = self._ref(index)
        if not p:
            return default
        n = _length(self.buf, p, 1)
        return bytes(self.buf[p + 4 : p + 4 + n]).decode("utf-8", "replace")

    def vector_span(self, index: int, itemsize: int) -> tuple[int, int] | None:
        """(start, count) of a vector of ``itemsize``-byte elements, or None when absent."""
        p = self._ref(index)
        if not p:
            return None
        return p + 4, _length(self.buf, p, itemsize)

    def scalars(self, index: int, fmt: str) -> list:
        span = self.vector_span(index, _SCALARS[fmt])
        if span is None:
            return []
        start, n = span
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start))

    def tables(self, index: int) -> list[Table]:
        span = self.vector_span(index, 4)
        if span is None:
            return []
        start, n = span
        out = []
        for k in range(n):
            p = start + 4 * k
            target = p + _U32.unpack_from(self.buf, p)[0]
            if target >= len(self.buf):
                raise FlatBufferError(f"element {k} of a table vector points past the end ({target})")
            out.append(Table(self.buf, target))
        return out


def _need(buf, pos: int, size: int, what: str) -> None:
    if pos < 0 or pos + size > len(buf):
        raise FlatBufferError(f"{what} at byte {pos} runs past the end of the {len(buf)}-byte buffer")


def _length(buf, p: int, itemsize: int) -> int:
    _need(buf, p, 4, "a vector length")
    n = _U32.unpack_from(buf, p)[0]
    if p + 4 + n * itemsize > len(buf):
        raise FlatBufferError(f"a vector of {n} elements at byte {p} runs past the end of the buffer")
    return n


def root(buf, identifier: bytes | None = None) -> Table:
    """The root table of ``buf``, checking the 4-byte file identifier when one is given."""
    _need(buf, 0, 8 if identifier else 4, "the root offset")
    if identifier is not None and bytes(buf[4:8]) != identifier:
        raise FlatBufferError(f"file identifier {bytes(buf[4:8])!r}, expected {identifier!r}")
    return Table(buf, _U32.unpack_from(buf, 0)[0])
