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

from ._h5meta_file import Attrs, File, _Object
from ._h5meta_messages import ExternalLink, HardLink, NotNative, SoftLink

__all__ = ["NotNative", "HardLink", "SoftLink", "ExternalLink", "Node", "Group", "Dataset", "address", "open_root"]


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
        root = f.object(f.root_addr)
        if root.links is None:
            raise NotNative("the root object is not a group")
        return Group(f, root, "/")
    except BaseException:
        f.close()
        raise
