"""The HDF5 file structures ``_h5meta`` parses: superblock, object headers, group B-trees,
symbol nodes, local and global heaps, attributes (HDF5 File Format Specification 3.0, sections
II, III and IV.A). See ``_h5meta`` for the subset read and the bounds kept.
"""
from __future__ import annotations

import builtins
import os
import struct

from ._h5meta_messages import (ATTR_INFO, ATTRIBUTE, CONTINUATION, DATASPACE, DATATYPE, FILL, FILL_OLD, IGNORED,
                               LAYOUT, LINK, LINK_INFO, NIL, SYMBOL_TABLE, UNDEF, NotNative, SoftLink, Space, Type,
                               check_fill, check_info, check_layout, dataspace, datatype, link_message, link_name,
                               shape_values)

MAGIC = b"\x89HDF\r\n\x1a\n"


class _Object:
    """One parsed object header: a group (``links``) or a dataset (``space``, ``dtype``)."""

    __slots__ = ("addr", "attrs", "links", "space", "dtype")

    def __init__(self, addr: int) -> None:
        self.addr = addr
        self.attrs: Attrs = Attrs()
        self.links: dict | None = None
        self.space: Space | None = None
        self.dtype: Type | None = None


class _AttrId:
    __slots__ = ("shape",)

    def __init__(self, shape) -> None:
        self.shape = shape


class Attrs(dict):
    """Attribute name -> decoded value; ``get_id(name).shape`` as h5py's (no data needed)."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: dict[str, tuple] = {}

    def get_id(self, name: str) -> _AttrId:
        return _AttrId(self.shapes[name])


class File:
    """The metadata of one HDF5 file (or a window of one: a stored zip member), parsed on demand.

    ``source`` is what h5py should open for the data (a path or a file object).
    """

    def __init__(self, path: str, source=None, offset: int = 0, size: int | None = None) -> None:
        self.path, self.source, self._offset = path, source if source is not None else path, offset
        try:
            self._f = builtins.open(path, "rb", buffering=0)
            real = os.fstat(self._f.fileno()).st_size
        except OSError as exc:
            raise NotNative(f"cannot read: {exc}") from None
        self._size = real - offset if size is None else min(size, real - offset)
        self._budget = 2 * max(self._size, 0) + (1 << 20)
        self._objects: dict[int, _Object] = {}
        self._heaps: dict[int, tuple[int, int]] = {}
        self._collections: dict[int, dict[int, bytes]] = {}
        self._nodes: set[int] = set()
        try:
            self._superblock()
        except BaseException:
            self._f.close()
            raise

    def close(self) -> None:
        self._f.close()

    # -- bytes -----------------------------------------------------------------------------
    def _at(self, addr: int, n: int) -> bytes:
        if addr < 0 or n < 0 or addr + n > self._eof:
            raise NotNative("address past the end of the file")
        self._budget -= n
        if self._budget < 0:
            raise NotNative("more metadata than the file size allows")
        self._f.seek(self._offset + addr)
        data = self._f.read(n)
        if len(data) != n:
            raise NotNative("short read")
        return data

    def _superblock(self) -> None:
        self._eof = self._size
        head = self._at(0, 24)
        if head[:8] != MAGIC:
            raise NotNative("no superblock at offset 0 (a user block)")
        version = head[8]
        if version not in (0, 1) or head[9] != 0 or head[10] != 0 or head[12] != 0:
            raise NotNative(f"superblock version {version}")
        if head[13] != 8 or head[14] != 8:
            raise NotNative("offsets or lengths other than 8 bytes")
        self._leaf_k, self._node_k, flags = struct.unpack_from("<HHI", head, 16)
        if not self._leaf_k or not self._node_k or flags:
            raise NotNative("zero B-tree K, or status flags")
        pos = 24 if version == 0 else 28
        rest = self._at(pos, 32 + 40)
        base, extension, eof, driver = struct.unpack_from("<4Q", rest, 0)  # libhdf5 reads the
        # free-space address as a superblock extension's, which versions 0 and 1 must not have
        if base != 0 or extension != UNDEF or driver != UNDEF or eof > self._size:
            raise NotNative("base address, driver block, or end of file past the file's size")
        self._eof = eof
        self.root_addr, cache = struct.unpack_from("<QI", rest, 40)
        if cache not in (0, 1):
            raise NotNative("root symbol table entry of another cache type")

    # -- object headers (spec IV.A.1.a: version 1) ----------------------------------------
    def object(self, addr: int) -> _Object:
        obj = self._objects.get(addr)
        if obj is None:
            obj = self._objects[addr] = self._parse_object(addr)
        return obj

    def _messages(self, addr: int):
        prefix = self._at(addr, 16)
        if prefix[0] != 1 or prefix[1] != 0:
            raise NotNative("object header other than version 1")
        count, _refs, size = struct.unpack_from("<HII", prefix, 2)
        chunks, seen, out = [(addr + 16, size)], {addr + 16}, []
        while chunks:
            start, length = chunks.pop(0)
            data = self._at(start, length)
            pos = 0
            while pos < length:
                if pos + 8 > length:
                    raise NotNative("object header chunk ends inside a message header")
                mtype, msize, mflags = struct.unpack_from("<HHB", data, pos)
                pos += 8
                if msize % 8 or pos + msize > length:
                    raise NotNative("object header message runs past its chunk")
                body = data[pos:pos + msize]
                pos += msize
                out.append((mtype, mflags, body))
                if len(out) > count:
                    raise NotNative("more object header messages than declared")
                if mtype == CONTINUATION:
                    if msize < 16:
                        raise NotNative("short continuation message")
                    cont, clen = struct.unpack_from("<QQ", body, 0)
                    if cont in seen or clen < 8:
                        raise NotNative("continuation block seen twice or empty")
                    seen.add(cont)
                    chunks.append((cont, clen))
        if len(out) != count:
            raise NotNative("fewer object header messages than declared")
        return out

    def _parse_object(self, addr: int) -> _Object:
        obj = _Object(addr)
        stab = layout = None
        link_info = False
        links: dict[str, object] = {}
        for mtype, mflags, body in self._messages(addr):
            if mflags & ~0x01:  # shared, or flags libhdf5 checks in combination: left to it
                raise NotNative("object header message flags")
            if mtype in (NIL, CONTINUATION):
                continue
            if mtype == DATASPACE:
                obj.space = dataspace(body)[0]
            elif mtype == DATATYPE:
                obj.dtype = datatype(body)[0]
            elif mtype == SYMBOL_TABLE:
                if len(body) < 16 or stab is not None:
                    raise NotNative("bad symbol table message")
                stab = struct.unpack_from("<QQ", body, 0)
            elif mtype == LINK_INFO:
                link_info = check_info(body, "link")
            elif mtype == LINK:
                name, link = link_message(body)
                if name in links:
                    raise NotNative("duplicate link name")
                links[name] = link
            elif mtype == ATTRIBUTE:
                self._attribute(obj.attrs, body)
            elif mtype == ATTR_INFO:
                check_info(body, "attribute")
            elif mtype in IGNORED:
                if mtype == LAYOUT:
                    layout = body
                elif mtype in (FILL_OLD, FILL):
                    check_fill(mtype, body)
            else:
                raise NotNative(f"object header message type {mtype:#x}")
        if stab is not None or link_info:
            if stab is not None and (link_info or links):
                raise NotNative("group with both symbol table and links")
            obj.links = self._symbol_table(*stab) if stab is not None else dict(sorted(links.items()))
            obj.space = obj.dtype = None
        elif links:
            raise NotNative("link messages outside a group")
        elif obj.space is None or obj.dtype is None or layout is None:
            raise NotNative("object that is neither a group nor a dataset")
        else:
            check_layout(layout, obj.space, obj.dtype, self._eof)
        return obj

    # -- old-style groups (spec III.A.1 B-tree v1, III.B symbol nodes, III.D local heap) -----
    def _heap(self, addr: int) -> tuple[int, int]:
        heap = self._heaps.get(addr)
        if heap is None:
            raw = self._at(addr, 32)
            if raw[:4] != b"HEAP" or raw[4] != 0:
                raise NotNative("bad local heap")
            size, free, data = struct.unpack_from("<QQQ", raw, 8)
            if data + size > self._eof:
                raise NotNative("local heap past the end of the file")
            seen = set()
            while free != 1:  # the free list, checked as H5HL__fl_deserialize does (1: its end)
                if free in seen or free + 16 > size:
                    raise NotNative("bad local heap free list")
                seen.add(free)
                offset, (free, block) = free, struct.unpack("<QQ", self._at(data + free, 16))
                if free == 0 or offset + block > size:
                    raise NotNative("bad local heap free list")
            heap = self._heaps[addr] = (data, size)
        return heap

    def _heap_name(self, heap: tuple[int, int], offset: int) -> bytes:
        data, size = heap
        if offset >= size:
            raise NotNative("name offset past its heap")
        pieces, done, step = [], 0, 64
        while True:  # names are short: 64 bytes first, then twice as many each time (linear)
            piece = self._at(data + offset + done, min(step, size - offset - done))
            if not piece:
                raise NotNative("unterminated name in local heap")
            end = piece.find(b"\0")
            if end >= 0:
                pieces.append(piece[:end])
                return b"".join(pieces)
            pieces.append(piece)
            done, step = done + len(piece), step * 2

    def _symbol_table(self, btree: int, heap_addr: int) -> dict:
        heap = self._heap(heap_addr)
        entries: list[tuple[bytes, object]] = []
        levels: dict[int, list] = {}
        self._btree(btree, heap, entries, levels, None, b"", None)
        for nodes in levels.values():  # siblings chained left to right, as H5B_get_info follows them
            if nodes[0][1] != UNDEF or nodes[-1][2] != UNDEF:
                raise NotNative("B-tree sibling at an end of its level")
            for (addr, _, right), (after, left, _) in zip(nodes, nodes[1:]):
                if right != after or left != addr:
                    raise NotNative("B-tree siblings do not chain")
        out: dict[str, object] = {}
        previous = None
        for raw, link in entries:
            if previous is not None and raw <= previous:
                raise NotNative("group names out of order")
            previous = raw
            out[link_name(raw)] = link
        return out

    def _btree(self, addr: int, heap, entries: list, levels: dict, level: int | None, low: bytes,
               high: bytes | None) -> None:
        """Append the (name, link) pairs below B-tree node ``addr``: names in (low, high]."""
        if addr in self._nodes:
            raise NotNative("B-tree node reached twice")
        self._nodes.add(addr)
        if addr + 32 + 32 * self._node_k > self._eof:  # libhdf5 reads whole nodes, full or not
            raise NotNative("B-tree node past the end of the file")
        head = self._at(addr, 24)
        if head[:4] != b"TREE" or head[4] != 0:
            raise NotNative("bad group B-tree node")
        node_level, used = head[5], struct.unpack_from("<H", head, 6)[0]
        levels.setdefault(node_level, []).append((addr, *struct.unpack_from("<QQ", head, 8)))
        if (level is not None and node_level != level) or used > 2 * self._node_k or (node_level and not used):
            raise NotNative("B-tree node level or entry count out of range")
        body = self._at(addr + 24, used * 16 + 8)
        keys = [struct.unpack_from("<Q", body, 16 * i)[0] for i in range(used + 1)]
        for i in range(used):
            child = struct.unpack_from("<Q", body, 16 * i + 8)[0]
            left = self._heap_name(heap, keys[i])
            right = self._heap_name(heap, keys[i + 1])
            if left < low or (high is not None and right > high):
                raise NotNative("B-tree keys out of order")
            start = len(entries)
            if node_level:
                self._btree(child, heap, entries, levels, node_level - 1, left, right)
            else:
                self._symbol_node(child, heap, entries)
            names = [raw for raw, _ in entries[start:]]
            if not names or names[0] <= left or names[-1] > right:
                raise NotNative("B-tree keys do not bound their names")

    def _symbol_node(self, addr: int, heap, entries: list) -> None:
        if addr in self._nodes:
            raise NotNative("symbol node reached twice")
        self._nodes.add(addr)
        if addr + 8 + 80 * self._leaf_k > self._eof:  # libhdf5 reads whole nodes, full or not
            raise NotNative("symbol node past the end of the file")
        head = self._at(addr, 8)
        if head[:4] != b"SNOD" or head[4] != 1:
            raise NotNative("bad symbol node")
        count = struct.unpack_from("<H", head, 6)[0]
        if count > 2 * self._leaf_k:
            raise NotNative("symbol node holds too many entries")
        body = self._at(addr + 8, 40 * count)
        for i in range(count):
            name_off, header, cache = struct.unpack_from("<QQI", body, 40 * i)
            raw = self._heap_name(heap, name_off)
            if cache == 2:  # soft link: the scratch pad holds the heap offset of its value
                target = self._heap_name(heap, struct.unpack_from("<I", body, 40 * i + 24)[0])
                entries.append((raw, SoftLink(link_name(target, path=True))))
            elif cache in (0, 1) and header < self._eof:
                entries.append((raw, header))
            else:
                raise NotNative("symbol table entry of unknown cache type")

    # -- attributes (spec IV.A.2.m) --------------------------------------------------------
    def _attribute(self, attrs: Attrs, body: bytes) -> None:
        if len(body) < 8:
            raise NotNative("short attribute message")
        version, flags, name_len, type_len, space_len = struct.unpack_from("<BBHHH", body, 0)
        if version == 1:
            pos, pad = 8, 8
        elif version in (2, 3):
            pos, pad = (8 if version == 2 else 9), 1
        else:
            raise NotNative(f"attribute message version {version}")
        if flags or (version == 3 and body[8] not in (0, 1)):
            raise NotNative("shared attribute datatype or dataspace")
        def take(n):
            nonlocal pos
            if pos + n > len(body):
                raise NotNative("attribute message runs past its end")
            out = body[pos:pos + n]
            pos += -(-n // pad) * pad
            return out
        raw_name = take(name_len)
        if not raw_name.endswith(b"\0"):
            raise NotNative("attribute name not terminated")
        name = link_name(raw_name[:-1], path=True)
        dtype = datatype(take(type_len))[0]
        space = dataspace(take(space_len))[0]
        if space.shape is None:
            raise NotNative("attribute with a null dataspace")
        count = 1
        for d in space.shape:
            count *= d
        item = 16 if dtype.kind == "vstring" else dtype.size
        if pos + count * item > len(body):
            raise NotNative("attribute data runs past its message")
        if name in attrs:
            raise NotNative("duplicate attribute")
        attrs[name] = shape_values(self._values(dtype, body, pos, count), space.shape, dtype)
        attrs.shapes[name] = space.shape

    def _values(self, dtype: Type, body: bytes, pos: int, count: int) -> list:
        if dtype.kind == "string":
            size = dtype.size
            out = []
            for i in range(count):
                raw = body[pos + i * size:pos + (i + 1) * size].rstrip(b"\0")
                if b"\0" in raw:
                    raise NotNative("fixed-length string with an inner NUL")
                out.append(raw.decode("utf-8", "replace"))
            return out
        if dtype.kind == "vstring":
            out = []
            for i in range(count):
                length, coll, index = struct.unpack_from("<IQI", body, pos + 16 * i)
                out.append(self._global(coll, index, length))
            return out
        if dtype.kind == "opaque":
            raise NotNative("opaque attribute")
        letter = {("int", 1): "b", ("uint", 1): "B", ("int", 2): "h", ("uint", 2): "H", ("int", 4): "i",
                  ("uint", 4): "I", ("int", 8): "q", ("uint", 8): "Q", ("float", 2): "e", ("float", 4): "f",
                  ("float", 8): "d"}[(dtype.kind, dtype.size)]
        return list(struct.unpack_from(f"{'>' if dtype.big else '<'}{count}{letter}", body, pos))

    def _global(self, addr: int, index: int, length: int) -> str:
        """A variable-length string from a global heap collection (spec III.E)."""
        if length == 0:
            return ""
        objects = self._collections.get(addr)
        if objects is None:
            objects = self._collections[addr] = self._collection(addr)
        data = objects.get(index)
        if data is None or length != len(data):  # as H5T__vlen_disk_read requires
            raise NotNative("variable-length string missing from its heap")
        self._budget -= length
        if self._budget < 0:
            raise NotNative("more string data than the file size allows")
        raw = data[:length]
        if b"\0" in raw:
            raise NotNative("variable-length string with a NUL")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotNative("variable-length string that is not UTF-8") from None

    def _collection(self, addr: int) -> dict[int, bytes]:
        head = self._at(addr, 16)
        if head[:4] != b"GCOL" or head[4] != 1:
            raise NotNative("bad global heap collection")
        size = struct.unpack_from("<Q", head, 8)[0]
        data = self._at(addr, size) if size >= 16 else b""
        out: dict[int, bytes] = {}
        pos = 16
        while pos + 16 <= size:
            index, _refs, osize = struct.unpack_from("<HH4xQ", data, pos)
            if index == 0:  # free space: the rest of the collection, header included
                if osize != size - pos:  # (libhdf5 1.14 loops forever on some other sizes)
                    raise NotNative("global heap free space of the wrong size")
                break
            if index in out or pos + 16 + osize > size:
                raise NotNative("bad global heap object")
            out[index] = data[pos + 16:pos + 16 + osize]
            pos += 16 + -(-osize // 8) * 8
        return out
