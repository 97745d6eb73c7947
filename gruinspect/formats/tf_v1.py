"""Legacy TensorFlow checkpoint V1: one SSTable file per shard, `P` or `P-00000-of-00002`.

docs/tf-checkpoints.md; TF `core/util/tensor_slice_writer.cc`, `tensor_slice_reader.cc`,
`saved_tensor_slice.proto`. The file is the same LevelDB-style table as a V2 `.index`:

- key "" (always first) holds SavedTensorSlices{meta = 1: SavedTensorSliceMeta{tensor = 1:
  SavedSliceMeta{name = 1, shape = 2, type = 3 (DataType), slice = 4 (TensorSliceProto)}}};
- every other key is the OrderedCode slice key (tensor name + extents, see ``_tf_slices``) of one slice, whose
  value is SavedTensorSlices{data = 2: SavedSlice{name = 1, slice = 2, data = 3: TensorProto}}
  with the values in the TensorProto's typed repeated fields (no dtype, no shape).

Listing reads the footer, the index block and the first entry of each shard only. A tensor is
read by looking its slice keys up through the index block's separator keys (one data block per
slice, checked against its crc32c), so reads never scan the table.
"""
from __future__ import annotations

import builtins
import math
import os
import re
from typing import TYPE_CHECKING

from ..errors import InvalidFileError, TruncatedFileError, UnsupportedError
from ..store import TensorInfo, TensorStore
from . import _tensor_proto, _wire, check_format
from ._table import TableError, TableFile
from ._tf_paths import latest_from_state, v1_shards
from ._tf_slices import shape_from_proto, slice_from_proto, slice_key, slice_region
from ._tf_types import dtype_from_enum

if TYPE_CHECKING:
    import numpy as np

FORMAT = "tf-checkpoint-v1"
FORMATS = (FORMAT,)
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})$")


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


def locate(path: str) -> tuple[str, list[str]] | None:
    """``(prefix, files)`` when PATH is a V1 checkpoint: a table whose first entry is the slice meta."""
    found = checkpoint_files(path)
    if found is None or not _looks_like_v1(found[1][0]):
        return None
    return found


def sniff(path: str) -> str | None:
    """"tf-checkpoint-v1" when PATH is a V1 checkpoint (see :func:`locate`), else None."""
    return FORMAT if locate(path) else None


def open(path: str, fmt: str | None = None) -> "V1Store":  # noqa: A001 - the reader API is sniff()/open()
    found = locate(path)
    if found is None:
        raise InvalidFileError(f"Invalid TensorFlow V1 checkpoint {path}: no checkpoint file with a slice table found.")
    check_format(fmt or FORMAT, FORMATS, path)
    from ._tf_paths import noting_state_file

    return noting_state_file(path, V1Store(*found))


def _looks_like_v1(path: str) -> bool:
    """Cheap content check: table magic, then a first entry with key "" whose value starts with
    field 1 (SavedTensorSlices.meta), where a V2 `.index` header starts with field 1 as a varint."""
    try:
        with builtins.open(path, "rb") as f:
            table = TableFile(path, f)
            return table.first_entry_head() == 0x0A
    except (OSError, TableError, _wire.WireError, ValueError):
        return False


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
        self._tables: list[TableFile] = []
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
        self.note_file(path)
        self._handles.append(f)
        try:
            table = TableFile(path, f)
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
        import numpy as np

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
