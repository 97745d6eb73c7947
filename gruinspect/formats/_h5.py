"""HDF5 pieces shared by the Keras readers: sniffing, opening, attributes, lazy datasets.

h5py is imported only inside functions, so importing this module costs nothing. Every h5py or
HDF5 failure is turned into a gruinspect error naming the file (readers must not let other
exception types escape on malformed input).

The helpers take h5py objects or the natively parsed ones of ``_h5meta`` (:func:`native_root`),
whose API mimics h5py's: readers build their tensor list and layers from the native parse when
the file is within its subset (no h5py, no numpy), and :class:`H5Store` opens the file with h5py
only when tensor data is first read.
"""
from __future__ import annotations

import builtins
import os
import re

from ..errors import GruInspectError, InvalidFileError, TruncatedFileError, UnsupportedError
from ..store import TensorInfo, TensorStore, dtype_name
from . import _h5meta, _limits
from ._guard import hang_guard

MAGIC = b"\x89HDF\r\n\x1a\n"
# The superblock may follow a user block of 512 * 2^k bytes (HDF5 spec, "Format Signature").
_MAGIC_OFFSETS = (0, 512, 1024, 2048, 4096)


def is_hdf5(path: str) -> bool:
    """Whether PATH is a file with the HDF5 signature at one of its allowed offsets."""
    if not os.path.isfile(path):
        return False
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(_MAGIC_OFFSETS[-1] + len(MAGIC))
    except OSError:
        return False
    return any(head[o:o + len(MAGIC)] == MAGIC for o in _MAGIC_OFFSETS)


def hang_message(where: str) -> str:
    """The error for a file whose metadata the HDF5 library never finishes reading."""
    return (f"Invalid HDF5 file {where}: the HDF5 library did not finish reading its metadata "
            "(the file is corrupted).")


def h5_error(where: str, exc: BaseException):
    """The gruinspect error for an h5py/HDF5 failure while reading ``where``."""
    text = str(exc)
    if "truncated" in text.lower() or "eof" in text.lower() or "end of file" in text.lower():
        return TruncatedFileError(f"Unexpected end of file {where}; the file may be truncated.")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = re.sub(r"\s+", " ", first)
    return InvalidFileError(f"Invalid HDF5 file {where}: {first.rstrip('.')}.")


def open_file(source, where: str):
    """``h5py.File(source, "r")`` with errors turned into gruinspect errors.

    ``source`` is a path or a seekable binary file object; ``where`` names it in messages.
    """
    import h5py

    try:
        return h5py.File(source, "r")
    except FileNotFoundError:
        raise InvalidFileError(f"Cannot read {where}: no such file.") from None
    except PermissionError:
        raise InvalidFileError(f"Cannot read {where}: permission denied.") from None
    except Exception as exc:  # h5py raises OSError/ValueError/RuntimeError variants
        raise h5_error(where, exc) from None


def decode(value):
    """An attribute value as str, or list of str for arrays (bytes are UTF-8)."""
    if type(value) in (str, int, float, list):  # plain Python already (as the native parse gives)
        return value
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and value.size == 0:  # Keras writes [] for "no weights"
            return []
        if value.ndim == 0:
            return decode(value[()])
        return [decode(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return decode(value.item())
    return value


def name_list(group, name: str, limit: int | None = None, where: str = "") -> list[str] | None:
    """A list attribute, joined from chunks ``name0``, ``name1``... when it was split.

    Keras (``save_attributes_to_hdf5_group``) splits lists over 64512 bytes into numbered chunks.
    None when neither form is present. With ``limit``, a list of more than ``limit`` names is
    refused before any of it is decoded (each name must name something the file holds, so the
    caller passes how many things that is).
    """
    attrs = group.attrs
    if name in attrs:
        keys = [name]
    elif f"{name}0" in attrs:
        keys = []
        while f"{name}{len(keys)}" in attrs:
            keys.append(f"{name}{len(keys)}")
    else:
        return None
    if limit is not None:
        count = sum(_attr_size(attrs, key) for key in keys)
        if count > limit:
            raise InvalidFileError(
                f"Invalid Keras file {where}: {group.name} attribute {name} lists {count} names, more than the "
                f"{limit} the file holds.")
    out: list[str] = []
    for key in keys:
        value = decode(attrs[key])
        out += [value] if isinstance(value, str) else [str(v) for v in value]
    return out


def _attr_size(attrs, key: str) -> int:
    """How many elements an attribute holds, from its dataspace (nothing is read)."""
    shape = attrs.get_id(key).shape
    size = 1
    for d in shape or ():
        size *= int(d)
    return size


def has_name_list(group, name: str) -> bool:
    attrs = group.attrs
    return name in attrs or f"{name}0" in attrs


def attr_text(group, name: str) -> str | None:
    """A scalar text attribute, or None."""
    if name not in group.attrs:
        return None
    value = decode(group.attrs[name])
    return value if isinstance(value, str) else None


def dataset_dtype(ds) -> str:
    """The dtype name of an h5py dataset; Keras 3 stores bfloat16 as opaque ``|V2`` + attr dtype."""
    if isinstance(ds, _h5meta.Dataset):
        return ds.dtype_name()
    dt = ds.dtype
    if dt.kind == "V" and dt.itemsize == 2 and decode(ds.attrs.get("dtype", "")) == "bfloat16":
        return "bfloat16"
    if dt.kind in ("S", "U", "O"):
        return "string"
    if dt.kind == "V":
        return f"void{dt.itemsize * 8}"
    return dtype_name(dt)


def read_dataset(ds, dtype: str):
    """The whole dataset as numpy; bfloat16 bit patterns are reinterpreted via ml_dtypes."""
    import numpy as np

    if ds.shape is None:  # HDF5 null dataspace
        return np.zeros((0,), dtype=np.float32)
    value = np.asarray(ds[()])
    if dtype == "bfloat16":
        import ml_dtypes

        return value.view(np.uint16).view(ml_dtypes.bfloat16)
    return value


def check_storage(ds, info: TensorInfo, where: str) -> None:
    """Refuse, before allocating, a dataset whose bytes are not really in this file.

    An HDF5 dataset can declare any shape and leave its chunks unwritten (reads return the fill
    value), keep its data in external files, or map other files (virtual datasets). Weights are
    always written in full, so a dataset holding fewer bytes than its shape needs is refused, and a
    compressed one may expand only within the limits of ``_limits.check_expansion``.
    """
    if ds.is_virtual or ds.external:
        raise UnsupportedError(f"Unsupported HDF5 file {where}: tensor {info.name} keeps its data in other files "
                               f"(an external or virtual dataset).")
    need = info.nbytes
    if need == 0:
        return
    stored = ds.id.get_storage_size()
    filtered = bool(ds.compression or ds.shuffle or ds.scaleoffset or ds.fletcher32) or bool(
        ds.id.get_create_plist().get_nfilters())
    if filtered and stored:
        _limits.check_expansion(need, stored, f"Unsupported HDF5 file {where}: compressed tensor {info.name}")
    elif stored < need:  # unfiltered and short, or filtered with no chunk written at all
        raise InvalidFileError(
            f"Invalid HDF5 file {where}: tensor {info.name} declares {need} bytes but only {stored} are stored; "
            f"the file may be truncated or crafted.")


def walk(f, visit_dataset, visit_group=None) -> list[str]:
    """Call ``visit_dataset(path, ds)`` / ``visit_group(path, group)`` for everything in ``f``.

    Soft and external links are not followed (a link must not make a file read another file);
    they are returned, each as "path -> target", so that the caller can say what it skipped.
    Each group is entered once, by object address: groups hard-linked into a DAG (or a cycle)
    would otherwise be walked once per path, 2^40 paths from a 40 KB file. The walk is iterative
    and linear in the number of links the file stores.
    """
    group_type, dataset_type, hard_link, external_link, address = _family(f)
    seen: set[int] = {address(f)}
    skipped: list[str] = []
    stack = [(iter(f), f, "")]  # depth first, in file order
    done = object()
    while stack:
        keys, group, prefix = stack[-1]
        key = next(keys, done)
        if key is done:
            stack.pop()
            continue
        link = group.get(key, getlink=True)
        path = f"{prefix}{key}"
        if isinstance(link, external_link):
            skipped.append(f"{path} -> {link.filename}:{link.path}")
            continue
        if not isinstance(link, hard_link):
            skipped.append(f"{path} -> {getattr(link, 'path', '?')}")
            continue
        obj = group[key]
        if isinstance(obj, dataset_type):
            visit_dataset(path, obj)
        elif isinstance(obj, group_type):
            addr = address(obj)
            if addr in seen:
                continue
            seen.add(addr)
            if visit_group is not None:
                visit_group(path, obj)
            stack.append((iter(obj), obj, path + "/"))
    return skipped


def skipped_links_warning(where: str, skipped: list[str]) -> str:
    """The warning for links :func:`walk` did not follow."""
    more = f" and {len(skipped) - 1} more" if len(skipped) > 1 else ""
    return (f"{where}: HDF5 soft or external link {skipped[0]}{more} not followed (gruinspect reads only what "
            f"the file itself holds).")


def lookup(group, path: str, where: str):
    """The object at ``path`` (relative, "/"-separated) below ``group``, or None when absent.

    Only hard links are followed: h5py's own ``group.get(path)`` follows soft links and opens the
    file an external link names (which blocks on a FIFO and reads whatever file is there), so a
    soft or external link on the way is refused in one line instead.
    """
    group_type, _, hard_link, external_link, _ = _family(group)
    obj = group
    for part in [p for p in path.split("/") if p]:
        if not isinstance(obj, group_type):
            return None
        link = obj.get(part, getlink=True)
        if link is None:
            return None
        if isinstance(link, external_link):
            raise UnsupportedError(
                f"Unsupported HDF5 file {where}: {path} is an external link to {link.filename}:{link.path}; "
                f"gruinspect never opens another file through an HDF5 link.")
        if not isinstance(link, hard_link):
            target = getattr(link, "path", "?")
            raise UnsupportedError(
                f"Unsupported HDF5 file {where}: {path} is a soft link (to {target}); gruinspect follows only "
                f"hard links.")
        obj = obj[part]
    return obj


def _family(obj):
    """(Group, Dataset, HardLink, ExternalLink, address of an object) of h5py or of ``_h5meta``,
    whichever ``obj`` comes from."""
    if isinstance(obj, _h5meta.Node):
        return _h5meta.Group, _h5meta.Dataset, _h5meta.HardLink, _h5meta.ExternalLink, _h5meta.address
    import h5py

    return h5py.Group, h5py.Dataset, h5py.HardLink, h5py.ExternalLink, lambda o: h5py.h5o.get_info(o.id).addr


def is_group(obj) -> bool:
    """Whether ``obj`` (from :func:`lookup`, h5py or native) is a group."""
    return obj is not None and isinstance(obj, _family(obj)[0])


def is_dataset(obj) -> bool:
    return obj is not None and isinstance(obj, _family(obj)[1])


def native_root(source, where: str = ""):
    """The natively parsed root group of an HDF5 file (a path, or a stored zip member given as
    an object with ``path``, ``offset`` and ``size``), or None when the file is outside what
    ``_h5meta`` reads (then h5py reads it). Set GRUINSPECT_H5_NATIVE=0 to always use h5py."""
    if os.environ.get("GRUINSPECT_H5_NATIVE", "1") == "0":
        return None
    try:
        if isinstance(source, str):
            return _h5meta.open_root(source)
        return _h5meta.open_root(source.path, source, source.offset, source.size)
    except _h5meta.NotNative:
        return None
    except Exception:  # anything unexpected in a damaged file: h5py says what is wrong
        return None


def native_close(root) -> None:
    """Close the file a native root group holds open (its objects stay usable)."""
    root.file.close()


def probe(path: str, check, failed):
    """``check(f)`` on the HDF5 file PATH opened natively when that settles it, else opened by
    h5py inside the hang guard; ``failed`` when neither can read it (``open`` then says why)."""
    root = native_root(path)
    if root is not None:
        try:
            return check(root)
        except Exception:  # whatever the native parse could not settle, h5py settles below
            pass
        finally:
            native_close(root)
    try:
        with hang_guard(hang_message(path)):
            # imported inside the guard: a supervised command forks before h5py and numpy load,
            # so the two processes share (and copy on write) fewer pages
            import h5py

            with h5py.File(path, "r") as f:
                return check(f)
    except Exception:
        return failed


def top_level_summary(f) -> str:
    """A few top-level names of an HDF5 file, for "is not a Keras file" messages."""
    keys = list(f.keys())[:6]
    more = ", ..." if len(f.keys()) > 6 else ""
    return ", ".join(keys) + more if keys else "nothing"


def count_datasets(f, limit: int = 1) -> int:
    """How many datasets ``f`` holds, counting at most ``limit``."""
    found = 0

    class _Enough(Exception):
        pass

    def see(_path, _ds):
        nonlocal found
        found += 1
        if found >= limit:
            raise _Enough

    try:
        walk(f, see)
    except _Enough:
        pass
    return found


class H5Store(TensorStore):
    """Tensors that are datasets in one or more open HDF5 files, read only on demand.

    ``_entries`` maps a store name to ``(file index, dataset path)``; subclasses fill it and
    ``_infos`` (in file order) and set ``path``, ``format``, ``layers`` and ``metadata``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._files: list = []
        self._where: list[str] = []
        self._entries: dict[str, tuple[int, str]] = {}
        self._infos: dict[str, TensorInfo] = {}
        self._cleanup: list = []

    def add_file(self, h5file, where: str) -> int:
        self._files.append(h5file)
        self._where.append(where)
        return len(self._files) - 1

    def add_dataset(self, name: str, file_index: int, path: str, ds) -> TensorInfo:
        try:
            shape = tuple(int(d) for d in ds.shape) if ds.shape is not None else (0,)
            info = TensorInfo(name, shape, dataset_dtype(ds))
        except Exception as exc:
            raise h5_error(self._where[file_index], exc) from None
        self._entries[name] = (file_index, path)
        self._infos[name] = info
        return info

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def read(self, name: str):
        if name not in self._entries:
            raise KeyError(name)
        index, path = self._entries[name]
        info = self._infos[name]
        try:
            ds = self._dataset(index, path)
            check_storage(ds, info, self._where[index])
            value = read_dataset(ds, info.dtype)
        except GruInspectError:
            raise
        except Exception as exc:
            raise h5_error(f"{self._where[index]} (tensor {name})", exc) from None
        if tuple(value.shape) != info.shape:
            raise InvalidFileError(f"Invalid HDF5 file {self._where[index]}: tensor {name} changed shape while read.")
        self.bytes_read += value.nbytes
        return value

    def row_reader(self, name: str):
        """Rows of a plain numeric 1-D or 2-D tensor read on demand (``blocks.map_blocks``
        streams ``stats`` and ``split`` through it), or None to read the tensor whole."""
        from ._h5_rows import H5RowReader

        if name not in self._entries:
            return None
        index, path = self._entries[name]
        info = self._infos[name]
        where = f"{self._where[index]} (tensor {name})"
        try:
            ds = self._dataset(index, path)
            check_storage(ds, info, self._where[index])
            reader = H5RowReader.open(self, name, ds, self._where[index])
        except GruInspectError:
            raise
        except Exception as exc:
            raise h5_error(where, exc) from None
        if reader is not None and (reader.shape != info.shape or dtype_name(reader.dtype) != info.dtype):
            return None  # read whole, with read()'s own checks
        return reader

    def _dataset(self, index: int, path: str):
        """The h5py dataset at ``path`` of file ``index``; a file whose metadata was parsed
        natively is opened with h5py here, on its first data read (inside the hang guard, as
        libhdf5 then reads its metadata itself)."""
        where = self._where[index]
        with hang_guard(hang_message(where)):
            f = self._files[index]
            if isinstance(f, _h5meta.Node):
                native_close(f)
                f = self._files[index] = open_file(f.file.source, where)
            return f[path]

    def close(self) -> None:
        for f in self._files:
            if isinstance(f, _h5meta.Node):
                native_close(f)
                continue
            try:
                f.close()
            except Exception:  # closing must never raise
                pass
        self._files = []
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception:
                pass
        self._cleanup = []
