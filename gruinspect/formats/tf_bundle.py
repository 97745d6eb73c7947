"""TensorFlow checkpoint V2 "tensor bundle": a `.index` table plus `.data-SSSSS-of-NNNNN` shards.

docs/tf-checkpoints.md; TF `core/util/tensor_bundle/tensor_bundle.cc`. The index is read whole (it is
metadata); tensor bytes are read only on demand, by offset, and checked against their masked
crc32c. Partitioned variables are assembled from their slice entries.
"""
from __future__ import annotations

import builtins
import math
import os
import stat
from typing import TYPE_CHECKING

from ..errors import ChecksumError, InvalidFileError, TruncatedFileError, UnsupportedError
from ..store import TensorInfo, TensorStore, numpy_dtype
from . import _wire, check_format
from ._crc import crc32c, mask
from ._table import TableError, TableFile, iter_table
from ._row_reader import RowReader
from ._tf_paths import bundle_prefix
from ._tf_types import ITEMSIZE, STORAGE, UNREADABLE, dtype_from_enum
from ._tf_slices import _overlap, _slice_entry_name, shape_from_proto, slice_from_proto, slice_key, slice_region
from ._tf_slices import _signed_num_increasing  # noqa: F401 - re-exported for the parser tests

if TYPE_CHECKING:  # numpy is imported where tensor data is read: `list` never imports it
    import numpy as np

FORMAT = "tf-checkpoint-v2"

OBJECT_FORMAT = "tf-object-checkpoint"
FORMATS = (FORMAT, OBJECT_FORMAT)
# The DT_STRING scalar holding a TF2 checkpoint's object graph (TF `python/checkpoint/checkpoint.py`,
# `base.OBJECT_GRAPH_PROTO_KEY`); a name-based TF1 checkpoint has none.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


def sniff(path: str) -> str | None:
    """"tf-object-checkpoint" when PATH names a V2 bundle holding a TF2 object graph,
    "tf-checkpoint-v2" for any other bundle (its `.index` exists), else None.

    Looks the object-graph key up through the index block (one data block read). A damaged
    `.index` is still claimed, so that opening it says what is wrong with it.
    """
    prefix = bundle_prefix(path)
    if prefix is None:
        return None
    return OBJECT_FORMAT if _has_object_graph(prefix + ".index") else FORMAT


def _has_object_graph(index_path: str) -> bool:
    try:
        with builtins.open(index_path, "rb") as f:
            return TableFile(index_path, f).get(OBJECT_GRAPH_KEY.encode()) is not None
    except (OSError, TableError, _wire.WireError, ValueError):
        return False


def open(path: str, fmt: str | None = None) -> "BundleStore":  # noqa: A001 - the reader API is sniff()/open()
    """The bundle PATH names. As "tf-object-checkpoint" (what :func:`sniff` says of a TF2
    checkpoint) its tensors are named by the object graph; as "tf-checkpoint-v2" by their keys."""
    prefix = bundle_prefix(path)
    if prefix is None:
        raise InvalidFileError(f"Invalid TensorFlow checkpoint {path}: no `.index` table found.")
    from ._tf_paths import noting_state_file

    if check_format(fmt or sniff(path), FORMATS, path) == OBJECT_FORMAT:
        from ._object_graph import ObjectCheckpointStore

        return noting_state_file(path, ObjectCheckpointStore(prefix))
    return noting_state_file(path, BundleStore(prefix))


class _Entry:
    __slots__ = ("dtype", "shape", "shard_id", "offset", "size", "crc", "slices")

    def __init__(self, fields: dict):
        self.dtype = dtype_from_enum(_wire.get_int(fields, 1))
        self.shape = shape_from_proto(_wire.get_message(fields, 2))
        self.shard_id = _wire.get_int(fields, 3)
        self.offset = _wire.get_int(fields, 4)
        self.size = _wire.get_int(fields, 5)
        self.crc = _wire.get_int(fields, 6, signed=False)
        self.slices = [slice_from_proto(s) for s in _wire.get_messages(fields, 7)]


class BundleStore(TensorStore):
    """A V2 bundle opened by prefix, tensors named by their keys. Reads tensors lazily; verifies
    crc32c on every read. Subclasses expose other names with :meth:`_expose`."""

    format = FORMAT

    def __init__(self, prefix: str, *, verify_checksums: bool = True):
        super().__init__()
        self.path = prefix
        self.prefix = prefix
        self.verify_checksums = verify_checksums
        self._index_path = prefix + ".index"
        self._entries: dict[str, _Entry] = {}
        self._slice_entries: dict[bytes, _Entry] = {}
        self._files: dict[int, object] = {}
        # {exposed name: checkpoint key} for tensors exposed under another name than their key
        self.checkpoint_keys: dict[str, str] = {}
        try:
            self._load_index()
        except BaseException:
            self.close()
            raise

    def _expose(self, names: dict[str, str]) -> None:
        """Expose each tensor under ``names[key]`` (every key of the index, names unique)."""
        self._infos = {}
        mapping = {}
        for key, entry in self._entries.items():
            name = names[key]
            self._infos[name] = TensorInfo(name, entry.shape, entry.dtype)
            if name != key:
                mapping[name] = key
        self.checkpoint_keys = mapping
        self.metadata["checkpoint_keys"] = mapping

    def read_key(self, key: str) -> np.ndarray:
        """The tensor stored under checkpoint key ``key``, whatever name it is exposed under."""
        entry = self._entries[key]
        if entry.slices:
            return self._assemble(key, entry)
        return self._read_entry(key, entry)

    # -- index ---------------------------------------------------------------------------
    def _load_index(self) -> None:
        try:
            self.note_file(self._index_path)
            with builtins.open(self._index_path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {self._index_path}: {exc.strerror}.") from None
        where = self._index_path
        try:
            rows = iter_table(data)
            first = next(rows, None)
            if first is None or first[0] != b"":
                raise InvalidFileError(f"Invalid TensorFlow checkpoint index {where}: the header entry is missing.")
            header = _wire.parse(first[1])
            self.num_shards = _wire.get_int(header, 1)
            self.big_endian = _wire.get_int(header, 2) == 1
            version = _wire.get_message(header, 3)
            self.metadata["bundle_version"] = _wire.get_int(version, 1)
            if not 1 <= self.num_shards <= 1 << 20:
                raise InvalidFileError(
                    f"Invalid TensorFlow checkpoint index {where}: the header claims {self.num_shards} shards."
                )
            for key, value in rows:
                entry = _Entry(_wire.parse(value))
                if key[:1] == b"\x00":
                    self._slice_entries[key] = entry
                    continue
                try:
                    name = key.decode("utf-8")
                except UnicodeDecodeError:
                    name = key.decode("utf-8", "backslashreplace")
                if not 0 <= entry.shard_id < self.num_shards:
                    raise InvalidFileError(
                        f"Invalid TensorFlow checkpoint index {where}: tensor {name} is in shard "
                        f"{entry.shard_id} of a {self.num_shards}-shard bundle."
                    )
                self._entries[name] = entry
        except TableError as exc:
            cls = TruncatedFileError if exc.truncated else InvalidFileError
            tail = "; the file may be truncated" if exc.truncated else ""
            raise cls(f"Invalid TensorFlow checkpoint index {where}: {exc}{tail}.") from None
        except _wire.WireError as exc:
            raise InvalidFileError(f"Invalid TensorFlow checkpoint index {where}: malformed entry ({exc}).") from None
        self._check_entries()
        self._infos = {
            name: TensorInfo(name, e.shape, e.dtype) for name, e in self._entries.items()
        }
        self.metadata["num_shards"] = self.num_shards

    def _check_entries(self) -> None:
        """Refuse every entry the data files cannot back, before any tensor byte is read.

        Only shard sizes are looked at (``stat``, no data), so `list` still reads no tensor data,
        but a truncated or missing shard, an offset past its end, or a shape claiming more bytes
        than the entry (or the files) hold is reported here instead of by a huge allocation later.
        """
        self._shard_sizes: dict[int, int] = {}
        for key, entry in self._slice_entries.items():
            self._check_plain(_slice_entry_name(key), entry)
        total = None
        for name, entry in self._entries.items():
            if entry.dtype == "dt_0":  # DT_INVALID: TF never writes it
                raise InvalidFileError(
                    f"Invalid TensorFlow checkpoint index {self._index_path}: tensor {name} has no dtype."
                )
            if not entry.slices:
                self._check_plain(name, entry)
                continue
            pieces = self._pieces(name, entry)
            claimed = sum(piece.size for _, piece in pieces)
            if claimed:
                if total is None:
                    used = {p.shard_id for p in self._slice_entries.values() if p.size}
                    total = sum(self._shard_size(i, name) for i in sorted(used))
                if claimed > total:
                    raise InvalidFileError(
                        f"Invalid TensorFlow checkpoint index {self._index_path}: the slices of tensor "
                        f"{name} claim {claimed} bytes but the data files hold {total}."
                    )

    def _shard_size(self, shard_id: int, name: str) -> int:
        size = self._shard_sizes.get(shard_id)
        if size is None:
            path = self.shard_path(shard_id)
            try:
                info = os.stat(path)
            except FileNotFoundError:
                raise InvalidFileError(
                    f"Invalid TensorFlow checkpoint {self.prefix}: data shard {os.path.basename(path)} "
                    f"(holding tensor {name}) is missing."
                ) from None
            except OSError as exc:
                raise InvalidFileError(f"Cannot read {path}: {exc.strerror}.") from None
            if not stat.S_ISREG(info.st_mode):
                raise InvalidFileError(f"Cannot read {path}: it is not a regular file.")
            size = self._shard_sizes[shard_id] = info.st_size
        return size

    def _check_plain(self, name: str, entry: _Entry) -> None:
        where = self._index_path
        if not 0 <= entry.shard_id < self.num_shards:
            raise InvalidFileError(
                f"Invalid TensorFlow checkpoint index {where}: tensor {name} is in shard "
                f"{entry.shard_id} of a {self.num_shards}-shard bundle."
            )
        if entry.offset < 0 or entry.size < 0:
            raise InvalidFileError(
                f"Invalid TensorFlow checkpoint index {where}: tensor {name} has offset {entry.offset} "
                f"and size {entry.size}."
            )
        numel = math.prod(entry.shape)
        storage = STORAGE.get(entry.dtype, entry.dtype)
        if entry.dtype == "string":
            # each element takes at least one length byte, and the lengths are followed by 4 check bytes
            if numel and numel + 4 > entry.size:
                raise InvalidFileError(
                    f"Invalid TensorFlow checkpoint index {where}: string tensor {name} of shape "
                    f"{list(entry.shape)} cannot fit in the {entry.size} bytes its entry says."
                )
        elif storage in ITEMSIZE and numel * ITEMSIZE[storage] != entry.size:
            raise InvalidFileError(
                f"Invalid TensorFlow checkpoint index {where}: tensor {name} of shape "
                f"{list(entry.shape)} and dtype {entry.dtype} needs {numel * ITEMSIZE[storage]} bytes "
                f"but its entry says {entry.size}."
            )
        if entry.size:
            file_size = self._shard_size(entry.shard_id, name)
            if entry.offset + entry.size > file_size:
                raise TruncatedFileError(
                    f"Unexpected end of file {self.shard_path(entry.shard_id)}: tensor {name} needs bytes "
                    f"{entry.offset}..{entry.offset + entry.size} but the file has {file_size}; "
                    "the file may be truncated."
                )

    def _pieces(self, name: str, entry: _Entry) -> list[tuple[tuple[tuple[int, int], ...], _Entry]]:
        """The slice entries of a partitioned tensor with the region of it each one fills.

        Checks that every slice lies inside the tensor, exists with the right shape and dtype,
        is listed once, and that together they have the tensor's volume.
        """
        shape = entry.shape
        where = self._index_path
        pieces = []
        seen = set()
        covered = 0
        for extents in entry.slices:
            index = slice_region(name, extents, shape, where)
            if index in seen:
                raise InvalidFileError(f"Invalid slice of tensor {name} in {where}: a slice is listed twice.")
            seen.add(index)
            piece = self._slice_entries.get(slice_key(name, extents))
            if piece is None:
                full = [(s, None if (s, l) == (0, d) else l) for (s, l), d in zip(extents, shape)]
                piece = self._slice_entries.get(slice_key(name, full))
            if piece is None:
                raise InvalidFileError(f"Invalid TensorFlow checkpoint {self.prefix}: a slice of tensor {name} is missing.")
            part_shape = tuple(b - a for a, b in index)
            if piece.slices or piece.shape != part_shape or piece.dtype != entry.dtype:
                raise InvalidFileError(f"Invalid slice of tensor {name} in {where}: shape or dtype mismatch.")
            covered += math.prod(part_shape)
            pieces.append((index, piece))
        if covered != math.prod(shape):
            raise InvalidFileError(f"Invalid TensorFlow checkpoint {self.prefix}: the slices of {name} do not cover it.")
        return pieces

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def shard_path(self, shard_id: int) -> str:
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    # -- data ----------------------------------------------------------------------------
    def read(self, name: str) -> np.ndarray:
        return self.read_key(self.checkpoint_keys.get(name, name))  # exposed name -> key

    def _shard(self, shard_id: int):
        f = self._files.get(shard_id)
        if f is None:
            path = self.shard_path(shard_id)
            try:
                f = builtins.open(path, "rb")
                self.note_file(path)
            except FileNotFoundError:
                raise InvalidFileError(
                    f"Invalid TensorFlow checkpoint {self.prefix}: data shard {os.path.basename(path)} is missing."
                ) from None
            except OSError as exc:
                raise InvalidFileError(f"Cannot read {path}: {exc.strerror}.") from None
            self._files[shard_id] = f
        return f

    def _read_bytes_into(self, name: str, entry: _Entry, buffer: memoryview, *, check: bool = True,
                         start: int = 0) -> None:
        """Fill ``buffer`` with the tensor's bytes from ``start`` on; ``check`` verifies the crc32c
        (only meaningful when the buffer holds the whole tensor). Safe on several threads at once
        (positional reads), as :class:`RowReader` uses it.
        """
        path = self.shard_path(entry.shard_id)
        f = self._shard(entry.shard_id)
        file_size = os.fstat(f.fileno()).st_size
        end = entry.offset + entry.size
        if entry.offset < 0 or end > file_size:
            raise TruncatedFileError(
                f"Unexpected end of file {path} while reading tensor {name}: it needs bytes "
                f"{entry.offset}..{end} but the file has {file_size}; the file may be truncated."
            )
        want = memoryview(buffer).nbytes
        got = self._pread(f, buffer, entry.offset + start)
        if got != want:
            raise TruncatedFileError(
                f"Unexpected end of file {path} while reading tensor {name}; the file may be truncated."
            )
        if self._lock is None:
            self.bytes_read += got
        else:
            with self._lock:
                self.bytes_read += got
        if check and self.verify_checksums and mask(crc32c(buffer)) != entry.crc:
            self._checksum_error(name, entry)

    _lock = None  # set by row_reader(), once reads may come from several threads

    def _pread(self, f, buffer, position: int) -> int:
        view = memoryview(buffer).cast("B")
        if not hasattr(os, "preadv"):  # Windows: no positional read; one reader at a time
            import contextlib

            with self._lock or contextlib.nullcontext():
                f.seek(position)
                return f.readinto(view) or 0
        fd, total = f.fileno(), 0
        while total < len(view):
            n = os.preadv(fd, [view[total:]], position + total)
            if not n:
                break
            total += n
        return total

    def row_reader(self, name: str) -> RowReader | None:
        """A :class:`RowReader` when tensor ``name`` is one plain run of numbers in the file (not
        partitioned, not strings, in this machine's byte order), else None: use :meth:`read`.
        """
        name = self.checkpoint_keys.get(name, name)
        entry = self._entries[name]
        if entry.slices or not entry.shape or entry.dtype == "string" or entry.dtype in UNREADABLE \
                or entry.dtype.startswith("dt_"):
            return None
        dtype = numpy_dtype(STORAGE.get(entry.dtype, entry.dtype))
        if (self.big_endian and dtype.itemsize > 1) or math.prod(entry.shape) * dtype.itemsize != entry.size:
            return None  # read() byte-swaps, or says what is wrong
        self._check_fits(name, entry)  # also opens the shard here, not on a worker thread
        if self._lock is None:
            import threading

            self._lock = threading.Lock()
        return RowReader(self, name, entry, dtype)

    def _checksum_error(self, name: str, entry: _Entry):
        raise ChecksumError(
            f"Checksum mismatch in {self.shard_path(entry.shard_id)} for tensor {name}: "
            "the stored data is corrupted."
        )

    def _read_entry(self, name: str, entry: _Entry) -> np.ndarray:
        import numpy as np

        if entry.dtype == "string":
            return self._read_strings(name, entry)
        if entry.dtype in UNREADABLE or entry.dtype.startswith("dt_"):
            raise UnsupportedError(f"Unsupported dtype {entry.dtype} for tensor {name} in {self.prefix}.")
        dtype = numpy_dtype(STORAGE.get(entry.dtype, entry.dtype))
        numel = math.prod(entry.shape)
        if numel * dtype.itemsize != entry.size:
            raise InvalidFileError(
                f"Invalid TensorFlow checkpoint index {self._index_path}: tensor {name} of shape "
                f"{list(entry.shape)} and dtype {entry.dtype} needs {numel * dtype.itemsize} bytes "
                f"but its entry says {entry.size}."
            )
        self._check_fits(name, entry)
        array = np.empty(numel, dtype=dtype)
        self._read_bytes_into(name, entry, memoryview(array.view(np.uint8)))
        if self.big_endian and dtype.itemsize > 1:
            array = array.byteswap()
        return array.reshape(entry.shape)

    def _check_fits(self, name: str, entry: _Entry) -> None:
        """Refuse sizes the shard cannot hold before allocating anything for them."""
        f = self._shard(entry.shard_id)
        file_size = os.fstat(f.fileno()).st_size
        if entry.offset < 0 or entry.offset + entry.size > file_size:
            raise TruncatedFileError(
                f"Unexpected end of file {self.shard_path(entry.shard_id)} while reading tensor "
                f"{name}: it needs bytes {entry.offset}..{entry.offset + entry.size} but the file "
                f"has {file_size}; the file may be truncated."
            )

    def _read_strings(self, name: str, entry: _Entry) -> np.ndarray:
        """DT_STRING: varint lengths, a masked crc of the lengths, then the bytes (docs/tf-checkpoints.md).

        The entry's crc covers each length as a little-endian uint32 (uint64 when >= 2**32),
        then the 4 stored check bytes, then the string bytes: not the bytes as laid out.
        """
        import numpy as np

        self._check_fits(name, entry)
        raw = bytearray(entry.size)
        self._read_bytes_into(name, entry, memoryview(raw), check=False)
        numel = math.prod(entry.shape)
        path = self.shard_path(entry.shard_id)
        bad = InvalidFileError(f"Invalid string tensor {name} in {path}: its lengths do not match its size.")
        # With checksums on, lengths that do not parse are corrupted bytes, as TF's own reader says.
        corrupted = ChecksumError(
            f"Checksum mismatch in {path} for tensor {name}: the stored string lengths are corrupted."
        ) if self.verify_checksums else bad
        pos, lengths = 0, []
        crc = 0
        try:
            for _ in range(numel):
                n, pos = _wire.read_varint(raw, pos)
                lengths.append(n)
                crc = crc32c(n.to_bytes(8 if n >= 1 << 32 else 4, "little"), crc)
        except _wire.WireError:
            raise corrupted from None
        if pos + 4 > len(raw):
            raise corrupted
        if self.verify_checksums and int.from_bytes(raw[pos : pos + 4], "little") != mask(crc):
            raise corrupted
        if pos + 4 + sum(lengths) != len(raw):
            raise bad
        if self.verify_checksums:
            crc = crc32c(raw[pos : pos + 4], crc)
            crc = crc32c(memoryview(raw)[pos + 4 :], crc)
            if mask(crc) != entry.crc:
                self._checksum_error(name, entry)
        pos += 4
        out = np.empty(numel, dtype=object)
        for i, n in enumerate(lengths):
            out[i] = bytes(raw[pos : pos + n])
            pos += n
        return out.reshape(entry.shape)

    def _assemble(self, name: str, entry: _Entry) -> np.ndarray:
        """Build a partitioned variable from its slice entries (docs/tf-checkpoints.md)."""
        import numpy as np

        if entry.dtype in UNREADABLE or entry.dtype.startswith("dt_"):
            raise UnsupportedError(f"Unsupported dtype {entry.dtype} for tensor {name} in {self.prefix}.")
        pieces = self._pieces(name, entry)
        # Slices of the right total volume can still overlap and leave part of `out` unwritten.
        if _overlap([index for index, _ in pieces], entry.shape):
            raise InvalidFileError(f"Invalid slice of tensor {name} in {self._index_path}: slices overlap.")
        out = np.empty(entry.shape, dtype=numpy_dtype(STORAGE.get(entry.dtype, entry.dtype)))
        for index, piece in pieces:
            out[tuple(slice(a, b) for a, b in index)] = self._read_entry(name, piece)
        return out

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
