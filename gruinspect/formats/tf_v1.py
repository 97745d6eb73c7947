"""Legacy TensorFlow checkpoint V1: one SSTable file per shard, `P` or `P-00000-of-00002`.

FORMATS.md §3; TF `core/util/tensor_slice_writer.cc`, `tensor_slice_reader.cc`,
`saved_tensor_slice.proto`. The file is the same LevelDB-style table as a V2 `.index`:

- key "" (always first) holds SavedTensorSlices{meta = 1: SavedTensorSliceMeta{tensor = 1:
  SavedSliceMeta{name = 1, shape = 2, type = 3 (DataType), slice = 4 (TensorSliceProto)}}};
- every other key is the OrderedCode slice key (tensor name + extents, §1.7) of one slice, whose
  value is SavedTensorSlices{data = 2: SavedSlice{name = 1, slice = 2, data = 3: TensorProto}}
  with the values in the TensorProto's typed repeated fields (no dtype, no shape).

Listing reads the footer, the index block and the first entry of each shard only. A tensor is
read by looking its slice keys up through the index block's separator keys (one data block per
slice, checked against its crc32c), so reads never scan the table.
"""
from __future__ import annotations

import bisect
import builtins
import math
import os
import re

import numpy as np

from ..errors import InvalidFileError, TruncatedFileError, UnsupportedError
from ..store import TensorInfo, TensorStore
from . import _tensor_proto, _wire
from ._table import FOOTER_SIZE, TableError, block_entries, parse_footer, read_block
from ._tf_paths import latest_from_state, v1_shards
from .tf_bundle import dtype_from_enum, shape_from_proto, slice_from_proto, slice_key, slice_region

FORMAT = "tf-checkpoint-v1"
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})$")
_FIRST_BLOCK_WHOLE = 1 << 20  # read the first block whole (and check its crc) up to this size
_TRAILER = 5


def checkpoint_files(path: str) -> tuple[str, list[str]] | None:
    """``(prefix, shard files)`` that PATH names, or None when it names no V1 checkpoint file."""
    if os.path.isdir(path):
        prefix = latest_from_state(path)
        if prefix is None:
            return None
    else:
        prefix = path
    match = _SHARD.search(prefix)
    if match and os.path.isfile(prefix):
        prefix = prefix[: match.start()]
    shards = v1_shards(prefix)
    if shards:
        return prefix, shards
    if os.path.isfile(prefix) and not prefix.endswith((".index", ".meta")):
        return prefix, [prefix]
    return None


def sniff(path: str) -> tuple[str, list[str]] | None:
    """``(prefix, files)`` when PATH is a V1 checkpoint: a table whose first entry is the slice meta."""
    found = checkpoint_files(path)
    if found is None or not _looks_like_v1(found[1][0]):
        return None
    return found


def open(path: str) -> "V1Store":  # noqa: A001 - the reader API is sniff()/open()
    found = sniff(path)
    if found is None:
        raise InvalidFileError(f"Invalid TensorFlow V1 checkpoint {path}: no checkpoint file with a slice table found.")
    return V1Store(*found)


def _looks_like_v1(path: str) -> bool:
    """Cheap content check: table magic, then a first entry with key "" whose value starts with
    field 1 (SavedTensorSlices.meta), where a V2 `.index` header starts with field 1 as a varint."""
    try:
        with builtins.open(path, "rb") as f:
            table = _Table(path, f)
            return table.first_entry_head() == 0x0A
    except (OSError, TableError, _wire.WireError, ValueError):
        return False


class _Table:
    """One table file: footer, index block and lazily read data blocks."""

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
        for key, handle in block_entries(index):
            try:
                block_offset, pos = _wire.read_varint(handle, 0)
                block_size, _ = _wire.read_varint(handle, pos)
            except _wire.WireError as exc:
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
            entries = list(block_entries(contents))
            if len(self._cache) >= 2:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = entries
        return entries

    def first_entry_head(self) -> int:
        """The first byte of the first entry's value, when its key is "" (else -1)."""
        offset, size = self.handles[0]
        head = self._pread(offset, min(size, 32))
        shared, pos = _wire.read_varint(head, 0)
        non_shared, pos = _wire.read_varint(head, pos)
        value_len, pos = _wire.read_varint(head, pos)
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
        shared, pos = _wire.read_varint(head, 0)
        non_shared, pos = _wire.read_varint(head, pos)
        value_len, pos = _wire.read_varint(head, pos)
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


class _Tensor:
    __slots__ = ("dtype", "shape", "slices")

    def __init__(self, dtype: str, shape: tuple[int, ...]):
        self.dtype = dtype
        self.shape = shape
        self.slices: list[tuple[list[tuple[int, int | None]], int]] = []  # (extents, shard)


class V1Store(TensorStore):
    """A V1 checkpoint (one table per shard). Listing reads only each shard's meta entry."""

    format = FORMAT

    def __init__(self, prefix: str, files: list[str]):
        super().__init__()
        self.path = prefix
        self.prefix = prefix
        self.files = files
        self._handles = []
        self._tables: list[_Table] = []
        self._tensors: dict[str, _Tensor] = {}
        try:
            self._check_shards()
            for shard, path in enumerate(files):
                self._load_meta(shard, path)
        except BaseException:
            self.close()
            raise
        self._infos = {name: TensorInfo(name, t.shape, t.dtype) for name, t in self._tensors.items()}
        self.metadata["num_shards"] = len(files)

    def _check_shards(self) -> None:
        counts = set()
        ids = []
        for path in self.files:
            match = _SHARD.search(path)
            if match:
                ids.append(int(match.group(1)))
                counts.add(int(match.group(2)))
        if not counts:
            return
        (count,) = counts if len(counts) == 1 else (None,)
        if count is None or sorted(ids) != list(range(count)):
            raise InvalidFileError(
                f"Invalid TensorFlow V1 checkpoint {self.prefix}: found shards {', '.join(os.path.basename(p) for p in self.files)}, "
                "which are not one complete set."
            )

    def _invalid(self, path: str, exc: Exception) -> Exception:
        if isinstance(exc, TableError) and exc.truncated:
            return TruncatedFileError(f"Unexpected end of file {path} ({exc}); the file may be truncated.")
        return InvalidFileError(f"Invalid TensorFlow V1 checkpoint {path}: {exc}.")

    def _load_meta(self, shard: int, path: str) -> None:
        try:
            f = builtins.open(path, "rb")
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {path}: {exc.strerror}.") from None
        self._handles.append(f)
        try:
            table = _Table(path, f)
            key, value = table.first_entry()
            if key != b"":
                raise TableError("the first entry is not the slice meta (key \"\")")
            meta = _wire.get_message(_wire.parse(value), 1)
            if not meta:
                raise TableError("the slice meta entry is empty (is this a V2 `.index` file?)")
            tensors = _wire.get_messages(meta, 1)
            for proto in tensors:
                name = _wire.get_str(proto, 1)
                dtype = dtype_from_enum(_wire.get_int(proto, 3))
                shape = shape_from_proto(_wire.get_message(proto, 2))
                tensor = self._tensors.get(name)
                if tensor is None:
                    tensor = self._tensors[name] = _Tensor(dtype, shape)
                elif (tensor.dtype, tensor.shape) != (dtype, shape):
                    raise TableError(f"tensor {name} has different shapes or dtypes in different shards")
                for extents in _wire.get_messages(proto, 4):
                    tensor.slices.append((slice_from_proto(extents), shard))
        except (TableError, _wire.WireError) as exc:
            raise self._invalid(path, exc) from None
        self._tables.append(table)

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    # -- data ----------------------------------------------------------------------------
    def read(self, name: str) -> np.ndarray:
        tensor = self._tensors[name]
        if tensor.dtype not in _tensor_proto._TYPED:
            raise UnsupportedError(f"Unsupported dtype {tensor.dtype} for tensor {name} in {self.prefix}.")
        shape = tensor.shape
        pieces = []
        for extents, shard in tensor.slices:
            pieces.append((extents, slice_region(name, extents, shape, self.files[shard]), shard))
        # Every stored element takes at least one byte (V1 stores exact counts, no splats), so a
        # shape claiming more elements than the files hold is corrupt: refuse before allocating.
        if math.prod(shape) > sum(table.size for table in self._tables):
            raise InvalidFileError(
                f"Invalid TensorFlow V1 checkpoint {self.prefix}: tensor {name} of shape {list(shape)} "
                "has more elements than the checkpoint has bytes."
            )
        if len(pieces) == 1 and all((a, b) == (0, d) for (a, b), d in zip(pieces[0][1], shape)):
            extents, index, shard = pieces[0]
            return self._read_slice(name, tensor.dtype, extents, index, shard)
        out = np.empty(shape, dtype=_tensor_proto.storage_dtype(tensor.dtype))
        covered = np.zeros(shape, dtype=bool)
        for extents, index, shard in pieces:
            region = tuple(slice(a, b) for a, b in index)
            if covered[region].any():
                raise InvalidFileError(f"Invalid slice of tensor {name} in {self.files[shard]}: slices overlap.")
            covered[region] = True
            out[region] = self._read_slice(name, tensor.dtype, extents, index, shard)
        if not covered.all():
            raise InvalidFileError(f"Invalid TensorFlow V1 checkpoint {self.prefix}: the slices of {name} do not cover it.")
        return out

    def _read_slice(self, name, dtype, extents, index, shard) -> np.ndarray:
        path = self.files[shard]
        table = self._tables[shard]
        part_shape = tuple(b - a for a, b in index)
        try:
            shape = self._tensors[name].shape
            # The key spells a whole dimension as length -1; try the other spelling too.
            candidates = [extents, [(a, None if (a, b) == (0, d) else b - a) for (a, b), d in zip(index, shape)],
                          [(a, b - a) for a, b in index]]
            value = None
            for candidate in candidates:
                value = table.get(slice_key(name, candidate))
                if value is not None:
                    break
            if value is None:
                raise InvalidFileError(f"Invalid TensorFlow V1 checkpoint {path}: a slice of tensor {name} is missing.")
            saved = _wire.get_message(_wire.parse(value), 2)
            if _wire.get_str(saved, 1) != name:
                raise InvalidFileError(
                    f"Invalid TensorFlow V1 checkpoint {path}: the slice stored for tensor {name} names "
                    f"{_wire.get_str(saved, 1)!r}."
                )
            data = saved.get(3)
            if not data or not isinstance(data[-1], bytes):
                raise InvalidFileError(f"Invalid TensorFlow V1 checkpoint {path}: the slice of tensor {name} has no data.")
            array = _tensor_proto.decode(memoryview(data[-1]), dtype, part_shape, what=f"tensor {name}", fill=False)
        except (TableError, _wire.WireError) as exc:
            raise self._invalid(path, exc) from None
        self.bytes_read += array.nbytes
        return array

    def close(self) -> None:
        for f in self._handles:
            f.close()
        self._handles.clear()
