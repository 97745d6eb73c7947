"""LevelDB-format sorted table, as TensorFlow writes it for `.index` files and V1 checkpoints.

Layout (docs/tf-checkpoints.md; TF `core/lib/io/format.cc`, `block_builder.cc`): a 48-byte footer with the
metaindex and index block handles and the magic; blocks of prefix-compressed entries followed by
restart offsets; a 5-byte trailer per block (compression type, masked crc32c of contents + type).
"""
from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator

from ._crc import masked_crc32c
from ._wire import WireError, read_varint

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
_TRAILER = 5
# Key bytes a table may spell per byte of file. TF's writer stores every 16th key whole (restart
# interval 16) and each value takes a dozen bytes or more, so its keys stay under ~16x the file.
_KEY_EXPANSION = 16
_NO_COMPRESSION = 0
# TableFile reads a first block this small whole (and checks its crc) to get the first entry.
_FIRST_BLOCK_WHOLE = 1 << 20
_SNAPPY = 1


class TableError(ValueError):
    """The bytes are not a well-formed table; ``truncated`` says whether they simply end too soon."""

    def __init__(self, message: str, truncated: bool = False):
        super().__init__(message)
        self.truncated = truncated


def has_table_magic(tail: bytes) -> bool:
    """Whether the last 8 bytes of a file are the table magic."""
    return len(tail) >= 8 and struct.unpack("<Q", tail[-8:])[0] == TABLE_MAGIC


def _handle(buf, pos: int) -> tuple[int, int, int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def read_block(data, offset: int, size: int, *, verify: bool = True) -> bytes:
    """The uncompressed contents of the block at ``offset`` (``size`` excludes the trailer)."""
    end = offset + size + _TRAILER
    if end > len(data):
        raise TableError(
            f"block at offset {offset} needs {size + _TRAILER} bytes but the file has "
            f"{max(len(data) - offset, 0)} from there",
            truncated=True,
        )
    contents = bytes(data[offset : offset + size])
    kind = data[offset + size]
    if verify:
        (stored,) = struct.unpack_from("<I", data, offset + size + 1)
        if masked_crc32c(contents + bytes([kind])) != stored:
            raise TableError(f"checksum mismatch in the block at offset {offset}")
    if kind == _NO_COMPRESSION:
        return contents
    if kind == _SNAPPY:
        return snappy_decompress(contents)
    raise TableError(f"unknown block compression type {kind} at offset {offset}")


_KEY_BOMB = f"its keys spell more than {_KEY_EXPANSION} times the file's size (a crafted table?)"


def _capped(entries: Iterator[tuple[bytes, bytes]], file_size: int) -> Iterator[tuple[bytes, bytes]]:
    """``entries`` of one block of a file of ``file_size`` bytes, refused once their keys spell
    more than the table's writer could have made (see ``_KEY_EXPANSION``)."""
    budget = _KEY_EXPANSION * file_size + (1 << 20)
    for key, value in entries:
        budget -= len(key)
        if budget < 0:
            raise TableError(_KEY_BOMB)
        yield key, value


def block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, value)`` pairs of one block, undoing prefix compression."""
    if len(block) < 4:
        raise TableError("block shorter than its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if num_restarts == 0 or limit < 0:
        raise TableError(f"block claims {num_restarts} restart points, more than it can hold")
    pos = 0
    key = b""
    while pos < limit:
        try:
            shared, pos = read_varint(block, pos)
            non_shared, pos = read_varint(block, pos)
            value_len, pos = read_varint(block, pos)
        except WireError as exc:
            raise TableError(f"malformed block entry: {exc}") from None
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise TableError("block entry runs past the end of its block")
        key = key[:shared] + block[pos : pos + non_shared]
        pos += non_shared
        yield key, block[pos : pos + value_len]
        pos += value_len


def parse_footer(footer: bytes, file_size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The metaindex and index block handles ``(offset, size)`` from the 48-byte footer."""
    if not has_table_magic(footer):
        raise TableError("wrong table magic at the end of the file (not a TensorFlow table, or truncated)")
    try:
        meta_offset, meta_size, pos = _handle(footer, 0)
        index_offset, index_size, _ = _handle(footer, pos)
    except WireError as exc:
        raise TableError(f"malformed table footer: {exc}") from None
    if meta_offset + meta_size + _TRAILER > file_size - FOOTER_SIZE:
        raise TableError("metaindex block handle points past the end of the file", truncated=True)
    if index_offset + index_size + _TRAILER > file_size - FOOTER_SIZE:
        raise TableError("index block handle points past the end of the file", truncated=True)
    return (meta_offset, meta_size), (index_offset, index_size)


def iter_table(data, *, verify: bool = True) -> Iterator[tuple[bytes, bytes]]:
    """Yield every ``(key, value)`` of a table held in ``data`` (bytes or mmap), in key order."""
    n = len(data)
    if n < FOOTER_SIZE:
        raise TableError(
            f"{n} bytes is shorter than the {FOOTER_SIZE}-byte table footer", truncated=True
        )
    (meta_offset, meta_size), (index_offset, index_size) = parse_footer(bytes(data[n - FOOTER_SIZE :]), n)
    # TF's writer leaves the metaindex empty, but its checksum still guards those bytes and the handle.
    read_block(data, meta_offset, meta_size, verify=verify)
    index = read_block(data, index_offset, index_size, verify=verify)
    previous = None
    # Prefix compression lets a small crafted table spell huge keys (each entry sharing a long
    # prefix): cap what the keys may add up to.
    budget = _KEY_EXPANSION * n + (1 << 20)
    for _, handle in block_entries(index):
        try:
            offset, size, _ = _handle(handle, 0)
        except WireError as exc:
            raise TableError(f"malformed index entry: {exc}") from None
        if offset + size + _TRAILER > n - FOOTER_SIZE:
            raise TableError(f"data block at offset {offset} ends past the end of the file", truncated=True)
        for key, value in block_entries(read_block(data, offset, size, verify=verify)):
            if previous is not None and key <= previous:
                raise TableError("keys out of order")
            budget -= len(key)
            if budget < 0:
                raise TableError(_KEY_BOMB)
            previous = key
            yield key, value


class TableFile:
    """One table file opened for lookups: footer and index block read, data blocks read on demand.

    Unlike :func:`iter_table`, which reads the whole file, this reads only the blocks asked for:
    the V1 reader looks slices up by key, and sniffing a V2 `.index` looks one key up.
    """

    def __init__(self, path: str, f):
        self.path = path
        self.file = f
        self.size = os.fstat(f.fileno()).st_size
        if self.size < FOOTER_SIZE:
            raise TableError(f"{self.size} bytes is shorter than the {FOOTER_SIZE}-byte table footer", truncated=True)
        (meta_offset, meta_size), (offset, size) = parse_footer(
            self._pread(self.size - FOOTER_SIZE, FOOTER_SIZE), self.size)
        # The metaindex is empty, but its checksum still guards those bytes and the handle.
        read_block(self._pread(meta_offset, meta_size + _TRAILER), 0, meta_size)
        index = read_block(self._pread(offset, size + _TRAILER), 0, size)
        self.separators: list[bytes] = []
        self.handles: list[tuple[int, int]] = []
        for key, handle in _capped(block_entries(index), self.size):
            try:
                block_offset, pos = read_varint(handle, 0)
                block_size, _ = read_varint(handle, pos)
            except WireError as exc:
                raise TableError(f"malformed index entry: {exc}") from None
            if block_offset + block_size + _TRAILER > self.size - FOOTER_SIZE:
                raise TableError(f"data block at offset {block_offset} ends past the end of the file", truncated=True)
            self.separators.append(bytes(key))
            self.handles.append((block_offset, block_size))
        if not self.handles:
            raise TableError("the table has no data blocks")
        self._cache: dict[int, list[tuple[bytes, bytes]]] = {}

    def _pread(self, offset: int, size: int) -> bytes:
        self.file.seek(offset)
        data = self.file.read(size)
        if len(data) != size:
            raise TableError(f"{self.path} ends inside the bytes {offset}..{offset + size}", truncated=True)
        return data

    def block(self, i: int) -> list[tuple[bytes, bytes]]:
        """The entries of data block ``i`` (crc checked); the last two blocks stay cached."""
        entries = self._cache.get(i)
        if entries is None:
            offset, size = self.handles[i]
            contents = read_block(self._pread(offset, size + _TRAILER), 0, size)
            entries = list(_capped(block_entries(contents), self.size))
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = entries
        return entries

    def first_entry_head(self) -> int:
        """The first byte of the first entry's value, when its key is "" (else -1)."""
        offset, size = self.handles[0]
        head = self._pread(offset, min(size, 32))
        shared, pos = read_varint(head, 0)
        non_shared, pos = read_varint(head, pos)
        value_len, pos = read_varint(head, pos)
        if shared or non_shared or not value_len or pos >= len(head):
            return -1
        return head[pos]

    def first_entry(self) -> tuple[bytes, bytes]:
        offset, size = self.handles[0]
        kind = self._pread(offset + size, 1)[0]
        if size <= _FIRST_BLOCK_WHOLE or kind != 0:
            entries = self.block(0)
            return entries[0] if entries else (b"\xff", b"")
        # A huge first block (a big first slice): parse its first entry only, without the crc.
        head = self._pread(offset, min(size, 32))
        shared, pos = read_varint(head, 0)
        non_shared, pos = read_varint(head, pos)
        value_len, pos = read_varint(head, pos)
        if shared or pos + non_shared + value_len > size:
            raise TableError("the first entry runs past its block")
        key = self._pread(offset + pos, non_shared)
        return key, self._pread(offset + pos + non_shared, value_len)

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``: the first block whose separator is >= key holds it."""
        i = bisect.bisect_left(self.separators, key)
        if i == len(self.handles):
            return None
        for k, value in self.block(i):
            if k == key:
                return value
            if k > key:
                break
        return None


def snappy_decompress(src: bytes) -> bytes:
    """Decode raw Snappy (the format of the rare compressed `.index` blocks of TF ~1.1)."""
    try:
        length, pos = read_varint(src, 0)
    except WireError:
        raise TableError("malformed Snappy block") from None
    if length > 64 * len(src) + 64:  # snappy cannot expand more than this; guards huge claims
        raise TableError("Snappy block claims an impossible uncompressed size")
    out = bytearray()
    n = len(src)
    while pos < n:
        tag = src[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                if pos + extra > n:
                    raise TableError("Snappy literal runs past the block")
                size = int.from_bytes(src[pos : pos + extra], "little")
                pos += extra
            size += 1
            if pos + size > n:
                raise TableError("Snappy literal runs past the block")
            out += src[pos : pos + size]
            pos += size
            continue
        if kind == 1:
            if pos >= n:
                raise TableError("Snappy copy runs past the block")
            size = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | src[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            if pos + width > n:
                raise TableError("Snappy copy runs past the block")
            size = (tag >> 2) + 1
            offset = int.from_bytes(src[pos : pos + width], "little")
            pos += width
        if offset == 0 or offset > len(out):
            raise TableError("Snappy copy points before the start of the output")
        start = len(out) - offset
        if offset >= size:
            out += out[start : start + size]
        else:  # an overlapping copy repeats the last `offset` bytes
            out += (out[start:] * (size // offset + 1))[:size]
        if len(out) > length:
            raise TableError("Snappy block decodes to more bytes than it claims")
    if len(out) != length:
        raise TableError("Snappy block decodes to fewer bytes than it claims")
    return bytes(out)
