"""Decoders of the HDF5 object header messages ``_h5meta`` reads (HDF5 File Format Specification
3.0, section IV.A.2): dataspace, datatype, link, link/attribute info, data layout, fill value.

Each checks its message as libhdf5 does when it opens the object, and raises :class:`NotNative`
for anything outside the subset read natively or inconsistent with itself.
"""
from __future__ import annotations

import struct

UNDEF = 0xFFFFFFFFFFFFFFFF  # an undefined address or length (all bits set)
# message types (spec IV.A.2)
NIL, DATASPACE, LINK_INFO, DATATYPE, LINK, ATTRIBUTE, CONTINUATION, SYMBOL_TABLE, ATTR_INFO = (
    0x00, 0x01, 0x02, 0x03, 0x06, 0x0C, 0x10, 0x11, 0x15)
LAYOUT, FILL_OLD, FILL = 0x08, 0x04, 0x05
# messages that say nothing list needs: fill values, layout, external files, group info,
# filters, comment, modification times, reference count
IGNORED = {0x04, 0x05, 0x07, 0x08, 0x0A, 0x0B, 0x0D, 0x0E, 0x12, 0x16}


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


class Space:
    """A dataspace: ``shape`` is None for a null dataspace, () for a scalar."""

    __slots__ = ("shape",)

    def __init__(self, shape) -> None:
        self.shape = shape


class Type:
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



def dataspace(body: bytes) -> tuple[Space, int]:
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
        if any(m != UNDEF and d > m for d, m in zip(dims, maxdims)):
            raise NotNative("dataspace dimension above its maximum")
    if kind == 2:
        return Space(None), end
    return Space(tuple(dims)), end


_IEEE = {2: (15, 10, 5, 0, 10, 15), 4: (31, 23, 8, 0, 23, 127), 8: (63, 52, 11, 0, 52, 1023)}


def datatype(body: bytes) -> tuple[Type, int]:
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
        return Type("int" if bits & 0x08 else "uint", size, bool(bits & 1)), 12
    if cls == 1:  # floating point: only the IEEE layouts numpy has
        if len(body) < 20 or size not in _IEEE:
            raise NotNative("floating-point type")
        offset, precision, eloc, esize, mloc, msize, bias = struct.unpack_from("<HHBBBBI", body, 8)
        sign = (bits >> 8) & 0xFF
        if (bits & 0xFF) not in (0x20, 0x21) or (sign, mloc + msize, esize, mloc, msize, bias) != _IEEE[size] \
                or offset or precision != 8 * size or eloc != msize:
            raise NotNative("floating-point type that is not IEEE")
        return Type("float", size, bool(bits & 1)), 20
    if cls == 3:  # fixed-length string
        if (bits & 0x0F) not in (0, 1) or (bits >> 4) & 0x0F not in (0, 1) or bits >> 8 or not size:
            raise NotNative("string padding or character set")
        return Type("string", size, pad=bits & 0x0F), 8
    if cls == 5:  # opaque: an ASCII tag padded to 8 bytes; h5py reads "NUMPY:" tags as numpy dtypes
        taglen = bits & 0xFF
        if taglen % 8 or len(body) < 8 + taglen or body[8:8 + taglen].startswith(b"NUMPY:") or not size:
            raise NotNative("opaque type")
        return Type("opaque", size), 8 + taglen
    if cls == 9:  # variable-length: strings only
        if bits & 0x0F != 1 or (bits >> 4) & 0x0F not in (0, 1) or (bits >> 8) & 0x0F not in (0, 1) or bits >> 12:
            raise NotNative("variable-length sequence")
        base, _end = datatype(body[8:])
        if base.kind not in ("uint", "int", "string") or base.size != 1:
            raise NotNative("variable-length string of wide characters")
        if size != 16:  # length, collection address, object index
            raise NotNative("variable-length type of another size")
        return Type("vstring", 16), len(body)
    raise NotNative(f"datatype class {cls}")


def check_info(body: bytes, what: str) -> bool:
    """Link info (IV.A.2.c) / attribute info (IV.A.2.v) message: only compact storage is read."""
    if len(body) < 2 or body[0] != 0:
        raise NotNative(f"{what} info message version")
    flags = body[1]
    if flags:
        raise NotNative(f"{what}s tracked in creation order")
    if len(body) < 2 + 16:
        raise NotNative(f"short {what} info message")
    heap = struct.unpack_from("<Q", body, 2)[0]
    if heap != UNDEF:
        raise NotNative(f"dense {what} storage (a fractal heap)")
    return True


def link_message(body: bytes) -> tuple[str, object]:
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
    name = link_name(body[pos:pos + length])
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
        return name, SoftLink(link_name(value, path=True))
    if kind == 64 and value[:1] == b"\0":
        parts = value[1:].split(b"\0")
        if len(parts) >= 2:
            return name, ExternalLink(link_name(parts[0], path=True), link_name(parts[1], path=True))
    raise NotNative("user-defined link")


def check_layout(body: bytes, space: Space, dtype: Type, eof: int) -> None:
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
        if addr != UNDEF and (addr + size > eof or size != nbytes):
            raise NotNative("contiguous data past the end of the file, or not of the dataset's size")
    else:
        rank = len(space.shape or ()) + 1
        if len(body) < 11 + 4 * rank or body[2] != rank:
            raise NotNative("chunk rank differs from the dataspace rank")
        dims = struct.unpack_from(f"<{rank}I", body, 11)
        if 0 in dims or dims[-1] != dtype.size:
            raise NotNative("chunk dimensions")


def check_fill(mtype: int, body: bytes) -> None:
    """Fill value messages (IV.A.2.e old, IV.A.2.f versions 1-3), decoded as libhdf5 decodes them."""
    if mtype == FILL_OLD:
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


def link_name(raw: bytes, path: bool = False) -> str:
    """A link (or, with ``path``, any) name as h5py gives it; anything odd is left to h5py."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise NotNative("name that is not UTF-8") from None
    if not path and (not text or "/" in text or text == "."):
        raise NotNative("link name h5py would not list as is")
    return text


def shape_values(values: list, shape: tuple, dtype: Type):
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
