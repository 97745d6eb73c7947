"""HDF5 metadata read natively: the subset h5py writes by default, for ``list`` without h5py/numpy.

Reads the group tree, attributes and the shape/dtype of every dataset of the HDF5 files Keras
and tf_keras write (h5py's default ``libver="earliest"``): superblock version 0/1, version 1
object headers with continuation blocks, old-style groups (symbol table message -> version 1
B-tree of symbol nodes, names in a local heap; soft links as symbol entries of cache type 2),
compact new-style groups (link messages), compact attributes (attribute message versions 1-3)
of fixed- or variable-length strings (global heap collections), integers and floats. Layout
from the HDF5 File Format Specification version 3.0 (docs.hdfgroup.org, "HDF5 File Format
Specification"), sections II (superblock), III.A/B/C/E (B-trees, symbol nodes, symbol table
entries, heaps), IV.A (object headers and messages).

Anything outside that subset (user blocks, superblock version 2/3, version 2 object headers,
dense link or attribute storage, shared messages, compound and other datatypes, unknown message
types) raises :class:`NotNative`, as does anything inconsistent: every address and length is
checked against the file's end, every loop is bounded by the bytes it consumes, each structure is
parsed once per address, and the total bytes parsed or decoded are capped by a multiple of the
file size. The caller then reads the file with h5py instead, which says what is wrong with it.

The objects mimic the parts of h5py's API the Keras readers use (``attrs``, ``name``, iteration
in name order, ``get(key, getlink=True)``, ``[key]``, ``shape``), so the same reader code runs on
either. Attribute values come decoded as ``gruinspect.formats._h5.decode`` decodes h5py's.
"""
from __future__ import annotations

import builtins
import os
import struct

MAGIC = b"\x89HDF\r\n\x1a\n"
_UNDEF = 0xFFFFFFFFFFFFFFFF
# message types (spec IV.A.2)
_NIL, _DATASPACE, _LINK_INFO, _DATATYPE, _LINK, _ATTRIBUTE, _CONTINUATION, _SYMBOL_TABLE, _ATTR_INFO = (
    0x00, 0x01, 0x02, 0x03, 0x06, 0x0C, 0x10, 0x11, 0x15)
_LAYOUT, _FILL_OLD, _FILL = 0x08, 0x04, 0x05
# messages that say nothing list needs: fill values, layout, external files, group info,
# filters, comment, modification times, reference count
_IGNORED = {0x04, 0x05, 0x07, 0x08, 0x0A, 0x0B, 0x0D, 0x0E, 0x12, 0x16}


class NotNative(Exception):
    """The file uses HDF5 features this parser does not read, or is inconsistent: use h5py."""


class HardLink:
    pass


class SoftLink:
    def __init__(self, path: str) -> None:
        self.path = path


class ExternalLink:
    def __init__(self, filename: str, path: str) -> None:
        self.filename, self.path = filename, path


class _Space:
    """A dataspace: ``shape`` is None for a null dataspace, () for a scalar."""

    __slots__ = ("shape",)

    def __init__(self, shape) -> None:
        self.shape = shape


class _Type:
    """A datatype: kind "int", "uint", "float", "string" (fixed), "vstring", "opaque"."""

    __slots__ = ("kind", "size", "big", "pad")

    def __init__(self, kind: str, size: int, big: bool = False, pad: int = 0) -> None:
        self.kind, self.size, self.big, self.pad = kind, size, big, pad

    def dtype_name(self) -> str:
        """The numpy dtype name h5py gives this type (``str(numpy.dtype)``; strings "string")."""
        if self.kind in ("string", "vstring"):
            return "string"
        if self.kind == "opaque":
            return f"void{self.size * 8}"
        letter = {"int": "i", "uint": "u", "float": "f"}[self.kind]
        if self.big and self.size > 1:
            return f">{letter}{self.size}"
        return {"i": "int", "u": "uint", "f": "float"}[letter] + str(self.size * 8)


class _Object:
    """One parsed object header: a group (``links``) or a dataset (``space``, ``dtype``)."""

    __slots__ = ("addr", "attrs", "links", "space", "dtype")

    def __init__(self, addr: int) -> None:
        self.addr = addr
        self.attrs: Attrs = Attrs()
        self.links: dict | None = None
        self.space: _Space | None = None
        self.dtype: _Type | None = None


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
        if base != 0 or extension != _UNDEF or driver != _UNDEF or eof > self._size:
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
                if mtype == _CONTINUATION:
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
            if mtype in (_NIL, _CONTINUATION):
                continue
            if mtype == _DATASPACE:
                obj.space = _dataspace(body)[0]
            elif mtype == _DATATYPE:
                obj.dtype = _datatype(body)[0]
            elif mtype == _SYMBOL_TABLE:
                if len(body) < 16 or stab is not None:
                    raise NotNative("bad symbol table message")
                stab = struct.unpack_from("<QQ", body, 0)
            elif mtype == _LINK_INFO:
                link_info = _check_info(body, "link")
            elif mtype == _LINK:
                name, link = _link(body)
                if name in links:
                    raise NotNative("duplicate link name")
                links[name] = link
            elif mtype == _ATTRIBUTE:
                self._attribute(obj.attrs, body)
            elif mtype == _ATTR_INFO:
                _check_info(body, "attribute")
            elif mtype in _IGNORED:
                if mtype == _LAYOUT:
                    layout = body
                elif mtype in (_FILL_OLD, _FILL):
                    _check_fill(mtype, body)
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
            _check_layout(layout, obj.space, obj.dtype, self._eof)
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
        chunk = b""
        while True:  # names are short: read 64 bytes at a time up to the NUL
            piece = self._at(data + offset + len(chunk), min(64, size - offset - len(chunk)))
            if not piece:
                raise NotNative("unterminated name in local heap")
            end = piece.find(b"\0")
            if end >= 0:
                return chunk + piece[:end]
            chunk += piece

    def _symbol_table(self, btree: int, heap_addr: int) -> dict:
        heap = self._heap(heap_addr)
        entries: list[tuple[bytes, object]] = []
        levels: dict[int, list] = {}
        self._btree(btree, heap, entries, levels, None, b"", None)
        for nodes in levels.values():  # siblings chained left to right, as H5B_get_info follows them
            if nodes[0][1] != _UNDEF or nodes[-1][2] != _UNDEF:
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
            out[_name(raw)] = link
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
                entries.append((raw, SoftLink(_name(target, path=True))))
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
        name = _name(raw_name[:-1], path=True)
        dtype = _datatype(take(type_len))[0]
        space = _dataspace(take(space_len))[0]
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
        attrs[name] = _shape_values(self._values(dtype, body, pos, count), space.shape, dtype)
        attrs.shapes[name] = space.shape

    def _values(self, dtype: _Type, body: bytes, pos: int, count: int) -> list:
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


# --------------------------------------------------------------------------- messages


def _dataspace(body: bytes) -> tuple[_Space, int]:
    """Dataspace message (spec IV.A.2.b) versions 1 and 2."""
    if len(body) < 4:
        raise NotNative("short dataspace message")
    version, rank, flags = body[0], body[1], body[2]
    if version == 1:
        pos, kind = 8, 1 if rank else 0
    elif version == 2:
        pos, kind = 4, body[3]
    else:
        raise NotNative(f"dataspace version {version}")
    if flags & ~0x01 or kind not in (0, 1, 2) or (kind != 1 and rank) or rank > 32:
        raise NotNative("dataspace flags or type")
    end = pos + 8 * rank * (2 if flags & 1 else 1)
    if end > len(body):
        raise NotNative("dataspace runs past its message")
    dims = struct.unpack_from(f"<{rank}Q", body, pos)
    if flags & 1:
        maxdims = struct.unpack_from(f"<{rank}Q", body, pos + 8 * rank)
        if any(m != _UNDEF and d > m for d, m in zip(dims, maxdims)):
            raise NotNative("dataspace dimension above its maximum")
    if kind == 2:
        return _Space(None), end
    return _Space(tuple(dims)), end


_IEEE = {2: (15, 10, 5, 0, 10, 15), 4: (31, 23, 8, 0, 23, 127), 8: (63, 52, 11, 0, 52, 1023)}


def _datatype(body: bytes) -> tuple[_Type, int]:
    """Datatype message (spec IV.A.2.d): fixed-point, IEEE floats, strings, opaque, vlen strings."""
    if len(body) < 8:
        raise NotNative("short datatype message")
    cls, version = body[0] & 0x0F, body[0] >> 4
    bits = body[1] | body[2] << 8 | body[3] << 16
    size = struct.unpack_from("<I", body, 4)[0]
    if version not in (1, 2, 3):
        raise NotNative(f"datatype version {version}")
    if cls == 0:  # fixed-point
        if len(body) < 12 or bits & ~0x09 or size not in (1, 2, 4, 8):
            raise NotNative("fixed-point type")
        offset, precision = struct.unpack_from("<HH", body, 8)
        if offset or precision != 8 * size:
            raise NotNative("fixed-point type with padding bits")
        return _Type("int" if bits & 0x08 else "uint", size, bool(bits & 1)), 12
    if cls == 1:  # floating point: only the IEEE layouts numpy has
        if len(body) < 20 or size not in _IEEE:
            raise NotNative("floating-point type")
        offset, precision, eloc, esize, mloc, msize, bias = struct.unpack_from("<HHBBBBI", body, 8)
        sign = (bits >> 8) & 0xFF
        if (bits & 0xFF) not in (0x20, 0x21) or (sign, mloc + msize, esize, mloc, msize, bias) != _IEEE[size] \
                or offset or precision != 8 * size or eloc != msize:
            raise NotNative("floating-point type that is not IEEE")
        return _Type("float", size, bool(bits & 1)), 20
    if cls == 3:  # fixed-length string
        if (bits & 0x0F) not in (0, 1) or (bits >> 4) & 0x0F not in (0, 1) or bits >> 8 or not size:
            raise NotNative("string padding or character set")
        return _Type("string", size, pad=bits & 0x0F), 8
    if cls == 5:  # opaque: an ASCII tag padded to 8 bytes; h5py reads "NUMPY:" tags as numpy dtypes
        taglen = bits & 0xFF
        if taglen % 8 or len(body) < 8 + taglen or body[8:8 + taglen].startswith(b"NUMPY:") or not size:
            raise NotNative("opaque type")
        return _Type("opaque", size), 8 + taglen
    if cls == 9:  # variable-length: strings only
        if bits & 0x0F != 1 or (bits >> 4) & 0x0F not in (0, 1) or (bits >> 8) & 0x0F not in (0, 1) or bits >> 12:
            raise NotNative("variable-length sequence")
        base, _end = _datatype(body[8:])
        if base.kind not in ("uint", "int", "string") or base.size != 1:
            raise NotNative("variable-length string of wide characters")
        if size != 16:  # length, collection address, object index
            raise NotNative("variable-length type of another size")
        return _Type("vstring", 16), len(body)
    raise NotNative(f"datatype class {cls}")


def _check_info(body: bytes, what: str) -> bool:
    """Link info (IV.A.2.c) / attribute info (IV.A.2.v) message: only compact storage is read."""
    if len(body) < 2 or body[0] != 0:
        raise NotNative(f"{what} info message version")
    flags = body[1]
    if flags:
        raise NotNative(f"{what}s tracked in creation order")
    if len(body) < 2 + 16:
        raise NotNative(f"short {what} info message")
    heap = struct.unpack_from("<Q", body, 2)[0]
    if heap != _UNDEF:
        raise NotNative(f"dense {what} storage (a fractal heap)")
    return True


def _link(body: bytes) -> tuple[str, object]:
    """Link message (IV.A.2.g): hard, soft and external links."""
    if len(body) < 2 or body[0] != 1:
        raise NotNative("link message version")
    flags, pos = body[1], 2
    if flags & 0xE0:
        raise NotNative("link message flags")
    kind = 0
    if flags & 0x08:
        kind, pos = body[pos], pos + 1
    if flags & 0x04:
        pos += 8
    if flags & 0x10:
        if body[pos:pos + 1] not in (b"\0", b"\1"):
            raise NotNative("link name character set")
        pos += 1
    width = 1 << (flags & 0x03)
    if pos + width > len(body):
        raise NotNative("short link message")
    length = int.from_bytes(body[pos:pos + width], "little")
    pos += width
    if not length or pos + length > len(body):
        raise NotNative("link name runs past its message")
    name = _name(body[pos:pos + length])
    pos += length
    if kind == 0:
        if pos + 8 > len(body):
            raise NotNative("short hard link")
        return name, struct.unpack_from("<Q", body, pos)[0]
    if pos + 2 > len(body):
        raise NotNative("short link value")
    size = struct.unpack_from("<H", body, pos)[0]
    value = body[pos + 2:pos + 2 + size]
    if len(value) != size:
        raise NotNative("link value runs past its message")
    if kind == 1:
        return name, SoftLink(_name(value, path=True))
    if kind == 64 and value[:1] == b"\0":
        parts = value[1:].split(b"\0")
        if len(parts) >= 2:
            return name, ExternalLink(_name(parts[0], path=True), _name(parts[1], path=True))
    raise NotNative("user-defined link")


def _check_layout(body: bytes, space: _Space, dtype: _Type, eof: int) -> None:
    """Data layout message (IV.A.2.i) version 3: compact, contiguous or chunked storage, checked
    as libhdf5 checks it when it opens the dataset (H5O__layout_decode, H5D__contig_check)."""
    if len(body) < 2 or body[0] != 3 or body[1] not in (0, 1, 2):
        raise NotNative("data layout version or class")
    nbytes = dtype.size
    for d in space.shape or ():
        nbytes *= d
    if body[1] == 0:
        if len(body) < 4 or 4 + struct.unpack_from("<H", body, 2)[0] > len(body):
            raise NotNative("compact data runs past its message")
    elif body[1] == 1:
        if len(body) < 18:
            raise NotNative("short contiguous layout")
        addr, size = struct.unpack_from("<QQ", body, 2)
        if addr != _UNDEF and (addr + size > eof or size != nbytes):
            raise NotNative("contiguous data past the end of the file, or not of the dataset's size")
    else:
        rank = len(space.shape or ()) + 1
        if len(body) < 11 + 4 * rank or body[2] != rank:
            raise NotNative("chunk rank differs from the dataspace rank")
        dims = struct.unpack_from(f"<{rank}I", body, 11)
        if 0 in dims or dims[-1] != dtype.size:
            raise NotNative("chunk dimensions")


def _check_fill(mtype: int, body: bytes) -> None:
    """Fill value messages (IV.A.2.e old, IV.A.2.f versions 1-3), decoded as libhdf5 decodes them."""
    if mtype == _FILL_OLD:
        if len(body) < 4 or 4 + struct.unpack_from("<I", body, 0)[0] > len(body):
            raise NotNative("old fill value runs past its message")
        return
    if len(body) < 2 or body[0] not in (1, 2, 3):
        raise NotNative("fill value message version")
    if body[0] < 3:
        if len(body) < 4 or body[1] not in (1, 2, 3) or body[2] > 2 or body[3] > 1:
            raise NotNative("fill value message fields")
        defined, pos = body[3] or body[0] == 1, 4  # version 1 always holds the size
    else:
        flags = body[1]
        if flags & ~0x3F or flags & 0x03 == 0 or (flags >> 2) & 0x03 > 2 or (flags & 0x10 and flags & 0x20):
            raise NotNative("fill value message flags")
        defined, pos = flags & 0x20, 2
    if defined:
        if pos + 4 > len(body) or pos + 4 + struct.unpack_from("<I", body, pos)[0] > len(body):
            raise NotNative("fill value runs past its message")


def _name(raw: bytes, path: bool = False) -> str:
    """A link (or, with ``path``, any) name as h5py gives it; anything odd is left to h5py."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotNative("name that is not UTF-8") from None
    if not path and (not text or "/" in text or text == "."):
        raise NotNative("link name h5py would not list as is")
    return text


def _shape_values(values: list, shape: tuple, dtype: _Type):
    """Values as ``_h5.decode`` turns h5py's: a scalar alone, arrays as nested lists, an empty
    float array as []."""
    if not shape:
        return values[0]
    if len(shape) > 1 and dtype.kind == "string":  # decode() leaves bytes inside nested lists
        raise NotNative("fixed-length string attribute of several dimensions")
    if not values:
        if len(shape) > 1 and dtype.kind != "float":
            raise NotNative("empty attribute of several dimensions")
        return []
    for dim in reversed(shape[1:]):
        values = [values[i:i + dim] for i in range(0, len(values), dim)]
    return values


# --------------------------------------------------------------------------- h5py-like handles


class Node:
    """An object reached by ``name`` (its path), as h5py's Group/Dataset objects are."""

    __slots__ = ("file", "obj", "name")

    def __init__(self, file: File, obj: _Object, name: str) -> None:
        self.file, self.obj, self.name = file, obj, name

    @property
    def attrs(self) -> Attrs:
        return self.obj.attrs

    @property
    def filename(self) -> str:
        return self.file.path


class Group(Node):
    __slots__ = ()

    def __iter__(self):
        return iter(self.obj.links)

    def __len__(self) -> int:
        return len(self.obj.links)

    def keys(self):
        return self.obj.links.keys()

    def __contains__(self, key: str) -> bool:
        link = self.obj.links.get(key)
        if link is None and "/" not in key:
            return False
        if not isinstance(link, int):
            raise NotNative("membership through a path or a link")
        self.file.object(link)  # h5py says False for a link to no object; here that declines
        return True

    def get(self, key: str, default=None, getlink: bool = False):
        if not getlink or "/" in key:
            raise NotNative("get without getlink, or of a path")
        link = self.obj.links.get(key)
        if link is None:
            return default
        return HardLink() if isinstance(link, int) else link

    def __getitem__(self, key: str) -> "Node":
        node: Node = self
        for part in key.strip("/").split("/"):
            if not isinstance(node, Group):
                raise KeyError(key)
            link = node.obj.links.get(part)
            if link is None:
                raise KeyError(key)
            if not isinstance(link, int):
                raise NotNative("a path through a soft or external link")
            node = node._child(part, link)
        return node

    def _child(self, key: str, addr: int) -> "Node":
        obj = self.file.object(addr)
        name = f"{self.name.rstrip('/')}/{key}"
        return Group(self.file, obj, name) if obj.links is not None else Dataset(self.file, obj, name)


class Dataset(Node):
    __slots__ = ()

    @property
    def shape(self):
        return self.obj.space.shape

    def dtype_name(self) -> str:
        """As ``_h5.dataset_dtype``: Keras 3 marks bfloat16 (2-byte opaque) with attribute dtype."""
        dtype = self.obj.dtype
        if dtype.kind == "opaque" and dtype.size == 2 and self.attrs.get("dtype", "") == "bfloat16":
            return "bfloat16"
        return dtype.dtype_name()


def address(node: Node) -> int:
    return node.obj.addr


def open_root(path: str, source=None, offset: int = 0, size: int | None = None) -> Group:
    """The root group of the HDF5 file at ``path`` (or of bytes ``[offset, offset + size)`` of
    it); raises NotNative when the file is outside the subset read here."""
    f = File(path, source, offset, size)
    try:
        return Group(f, f.object(f.root_addr), "/")
    except BaseException:
        f.close()
        raise
