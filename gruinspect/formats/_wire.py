"""Minimal protobuf wire-format decoder.

Only what the readers need: a message becomes ``{field_number: [values]}`` where a value is an int
(varint, fixed32, fixed64) or a ``bytes`` slice (length-delimited). Schemas live with the readers
that use them. Malformed input raises :class:`WireError`, which readers turn into a message that
names the file.
"""
from __future__ import annotations

import struct
from collections.abc import Iterator


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; return ``(value, next_pos)``."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireError("varint runs past the end of the data")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            if result >> 64:  # a 10th byte may carry only the 64th bit
                raise WireError("varint larger than 64 bits")
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


class TruncatedWireError(WireError):
    """A length or fixed-size field runs past the end of the buffer."""


def iter_fields(buf) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field, wire_type, value)`` for one message held in ``buf``.

    Length-delimited values are slices of ``buf`` itself: bytes for bytes, memoryview slices (no
    copy) for a memoryview.
    """
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if field == 0:
            raise WireError("field number 0")
        if wire_type == 0:
            value, pos = read_varint(buf, pos)
        elif wire_type == 2:
            length, pos = read_varint(buf, pos)
            if pos + length > end:
                raise TruncatedWireError(f"field {field} claims {length} bytes, past the end of the data")
            value = buf[pos : pos + length]
            pos += length
        elif wire_type == 5:
            if pos + 4 > end:
                raise TruncatedWireError("fixed32 field runs past the end of the data")
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        elif wire_type == 1:
            if pos + 8 > end:
                raise TruncatedWireError("fixed64 field runs past the end of the data")
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        else:
            raise WireError(f"unknown wire type {wire_type} for field {field}")
        yield field, wire_type, value


def parse(buf) -> dict[int, list]:
    """Decode one message into ``{field: [value, ...]}`` (values in wire order)."""
    fields: dict[int, list] = {}
    for field, _, value in iter_fields(bytes(buf)):
        fields.setdefault(field, []).append(value)
    return fields


def get_int(fields: dict, number: int, default: int = 0, *, signed: bool = True) -> int:
    """The last varint of a field (proto3 semantics), as a signed 64-bit int by default."""
    values = fields.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, int):
        raise WireError(f"field {number} should be a number")
    if signed and value >= 1 << 63:
        value -= 1 << 64
    return value


def get_bytes(fields: dict, number: int, default: bytes = b"") -> bytes:
    values = fields.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, bytes):
        raise WireError(f"field {number} should be length-delimited")
    return value


def get_str(fields: dict, number: int, default: str = "") -> str:
    raw = get_bytes(fields, number, None)
    if raw is None:
        return default
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"field {number} is not valid UTF-8") from exc


def get_messages(fields: dict, number: int) -> list[dict]:
    """All values of a repeated embedded-message field, each decoded."""
    out = []
    for value in fields.get(number, ()):
        if not isinstance(value, bytes):
            raise WireError(f"field {number} should be an embedded message")
        out.append(parse(value))
    return out


def get_message(fields: dict, number: int) -> dict:
    msgs = get_messages(fields, number)
    return msgs[-1] if msgs else {}


def get_packed_varints(fields: dict, number: int, *, signed: bool = True) -> list[int]:
    """A repeated varint field, accepting both packed and unpacked encodings."""
    out: list[int] = []
    for value in fields.get(number, ()):
        if isinstance(value, int):
            out.append(value)
        else:
            pos = 0
            while pos < len(value):
                v, pos = read_varint(value, pos)
                out.append(v)
    if signed:
        out = [v - (1 << 64) if v >= 1 << 63 else v for v in out]
    return out
