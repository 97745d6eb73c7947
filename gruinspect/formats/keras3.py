"""Keras 3 weights: `.keras` archives, unzipped archive folders, `.weights.h5`, sharded `.weights.json`.

docs/keras-files.md; keras `src/saving/saving_lib.py` (`_save_state`, `_save_container_state`,
`H5IOStore`, `ShardedH5IOStore`, `NpzIOStore`):

    archive.zip: metadata.json {"keras_version", "date_saved"}, config.json {"class_name", "config", ...},
                 model.weights.h5 (or model.weights.npz), optional assets/
    weights.h5:  vars                                   the model's own variables (attr name on >= 3.6)
                 layers/<key>/vars/0, 1, ...            a layer's variables in creation order
                 layers/gru/cell/vars/{0,1,2}           GRU: kernel, recurrent_kernel, bias (2 absent without bias)
                 layers/bidirectional/{forward_layer,backward_layer}/cell/vars
                 layers/time_distributed/layer/vars, layers/sequential/layers/gru/..., optimizer/vars

``<key>`` is ``to_snake_case(class name)`` made unique per container (``gru``, ``gru_1``). User
layer names come from the ``name`` attribute of each ``vars`` group (Keras >= 3.6), else from
config.json (rebuilding the keys with the same counters), else from the keys themselves.
Tensors are named by their HDF5 dataset path (``layers/gru/cell/vars/0``).

This reader claims every zip file, so a zip that is not a Keras archive gets a one-line error
naming what it appears to be. Archive members are never read whole into memory: the weights
member is opened in place when it is stored uncompressed (as Keras 3 writes it), and otherwise
streamed to a temporary file; declared sizes are checked first.
"""
from __future__ import annotations

import builtins
import io
import os

from ..errors import GruInspectError, InvalidFileError, TruncatedFileError, UnsupportedError
from ..store import TensorInfo
from . import _h5, _h5meta, _json, _limits, _zip, check_format
from ._guard import hang_guard
from ._keras3_layers import Builder, Tree
from .keras_h5 import keras_generation

FORMAT_ARCHIVE = "keras3-archive"
FORMAT_FOLDER = "keras3-folder"
FORMAT_WEIGHTS = "keras3-weights-h5"
FORMAT_SHARDED = "keras3-weights-sharded"
FORMATS = (FORMAT_ARCHIVE, FORMAT_FOLDER, FORMAT_WEIGHTS, FORMAT_SHARDED)

WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"
WEIGHTS_INDEX = "model.weights.json"
MAX_JSON_BYTES = 64 << 20          # config.json, metadata.json, a shard index
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

# --------------------------------------------------------------------------- sniffing


def sniff(path: str) -> str | None:
    """The Keras 3 format PATH holds (one of :data:`FORMATS`), else None. Every zip file is
    claimed as an archive, so that one that is not a Keras archive gets an error saying what it is."""
    if os.path.isdir(path):
        return FORMAT_FOLDER if _archive_folder_weights(path) else None
    if not os.path.isfile(path):
        return None
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head.startswith(_ZIP_MAGIC):
        return FORMAT_ARCHIVE
    if head.lstrip()[:1] == b"{" and b'"weight_map"' in head:
        return FORMAT_SHARDED
    if _h5.is_hdf5(path) and _is_keras3_h5(path):
        return FORMAT_WEIGHTS
    return None


def _archive_folder_weights(path: str) -> str | None:
    if not os.path.isfile(os.path.join(path, "config.json")):
        return None
    for name in (WEIGHTS_H5, WEIGHTS_INDEX, WEIGHTS_NPZ):
        if os.path.isfile(os.path.join(path, name)):
            return name
    return None


def _is_keras3_h5(path: str) -> bool:
    return _h5.probe(path, lambda f: _keras3_tree(f, path), False)


def _keras3_tree(f, path: str) -> bool:
    """Whether the open HDF5 file (h5py or native) holds a Keras 3 object tree."""
    if _h5.has_name_list(f, "layer_names") or "model_weights" in f:
        return False
    return any(_h5.is_group(_h5.lookup(f, k, path)) for k in ("layers", "vars", "_layer_checkpoint_dependencies"))


# --------------------------------------------------------------------------- opening


def open(path: str, fmt: str | None = None) -> "Keras3Store":  # noqa: A001 - the reader API is sniff()/open()
    fmt = check_format(fmt or sniff(path), FORMATS, path)
    store = Keras3Store(path, fmt, native=True)
    try:
        _open_format(store, path)
        return store
    except Exception:  # declined or damaged: read it all again with h5py, which says what is wrong
        store.close()
    store = Keras3Store(path, fmt)
    try:
        with hang_guard(_h5.hang_message(path)):
            _open_format(store, path)
    except GruInspectError:
        store.close()
        raise
    except Exception as exc:
        store.close()
        raise _h5.h5_error(path, exc) from None
    return store


def _open_format(store: "Keras3Store", path: str) -> None:
    if store.format == FORMAT_ARCHIVE:
        store.open_archive()
    elif store.format == FORMAT_FOLDER:
        store.open_folder()
    elif store.format == FORMAT_SHARDED:
        store.open_sharded(path)
    else:
        store.open_h5_files([(path, path)])
    store.finish()


class _Window(io.RawIOBase):
    """Read-only view of bytes ``[offset, offset + size)`` of a file: a stored zip member in place."""

    def __init__(self, path: str, offset: int, size: int):
        super().__init__()
        self._f = builtins.open(path, "rb")
        self._offset = offset
        self._size = size
        self.path, self.offset, self.size = path, offset, size  # for _h5.native_root
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 1:
            pos += self._pos
        elif whence == 2:
            pos += self._size
        self._pos = max(0, pos)
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self._size - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._offset + self._pos)
        got = self._f.readinto(memoryview(buffer)[:n])
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


class Keras3Store(_h5.H5Store):
    """Keras 3 weights from an archive, folder, single `.weights.h5` or sharded set."""

    def __init__(self, path: str, fmt: str, native: bool = False) -> None:
        super().__init__()
        self.path = path
        self.format = fmt
        self._native = native  # HDF5 metadata parsed by _h5meta, or else declined: never h5py
        self.config: dict | None = None
        self._tree = Tree()
        self._npz: dict[str, tuple] = {}
        self._tmpdir: str | None = None

    # -- containers ------------------------------------------------------------------------
    def open_archive(self) -> None:
        import zipfile

        path = self.path
        try:
            self.note_file(path)
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise TruncatedFileError(
                f"Unexpected end of file {path}: the zip archive has no end-of-archive record; "
                f"the file may be truncated.") from None
        except (OSError, ValueError, EOFError) as exc:
            raise InvalidFileError(f"Invalid zip archive {path}: {exc}.") from None
        self._cleanup.append(zf.close)
        infos = _zip.unique_members(zf, path, self.metadata, "Keras archive")
        weights = next((n for n in (WEIGHTS_H5, WEIGHTS_INDEX, WEIGHTS_NPZ) if n in infos), None)
        if "config.json" not in infos or weights is None:
            raise UnsupportedError(f"Unsupported file {path}: it appears to be {_describe_zip(list(infos))}.")
        self.config = _json_value(self._read_small(zf, infos["config.json"]), f"{path}:config.json")
        if "metadata.json" in infos:
            meta = _json_value(self._read_small(zf, infos["metadata.json"]), f"{path}:metadata.json")
            if isinstance(meta, dict):
                self._set_version(meta)
        if weights == WEIGHTS_H5:
            self.open_h5_files([(self._member_source(zf, infos[weights]), f"{path}:{weights}")])
        elif weights == WEIGHTS_NPZ:
            self._open_npz(self._member_source(zf, infos[weights]), f"{path}:{weights}")
        else:
            index = _json_value(self._read_small(zf, infos[weights]), f"{path}:{weights}")
            files = _shard_files(index, f"{path}:{weights}")
            sources = []
            for name in files:
                if name not in infos:
                    raise InvalidFileError(
                        f"Invalid Keras archive {path}: shard {name} listed in {weights} is missing.")
                sources.append((self._member_source(zf, infos[name]), f"{path}:{name}"))
            self.open_h5_files(sources)

    def open_folder(self) -> None:
        path = self.path
        weights = _archive_folder_weights(path)
        config_path = os.path.join(path, "config.json")
        self.note_file(config_path)
        self.config = _json_value(_read_small_file(config_path), config_path)
        meta_path = os.path.join(path, "metadata.json")
        if os.path.isfile(meta_path):
            self.note_file(meta_path)
            meta = _json_value(_read_small_file(meta_path), meta_path)
            if isinstance(meta, dict):
                self._set_version(meta)
        wpath = os.path.join(path, weights)
        if weights == WEIGHTS_H5:
            self.open_h5_files([(wpath, wpath)])
        elif weights == WEIGHTS_NPZ:
            self.note_file(wpath)
            self._open_npz(wpath, wpath)
        else:
            self.open_sharded(wpath)

    def open_sharded(self, index_path: str) -> None:
        self.note_file(index_path)
        index = _json_value(_read_small_file(index_path), index_path)
        folder = os.path.dirname(os.path.abspath(index_path))
        sources = []
        for name in _shard_files(index, index_path):
            shard = os.path.join(folder, name)
            if not os.path.isfile(shard):
                raise InvalidFileError(f"Invalid Keras sharded weights {index_path}: shard {name} is missing.")
            sources.append((shard, shard))
        self.metadata["shards"] = len(sources)
        self.open_h5_files(sources)

    def open_h5_files(self, sources) -> None:
        """Open each (source, where) and merge its groups and datasets into the tree."""
        for source, where in sources:
            if source == where:  # a file of its own, not an archive member
                self.note_file(source)
            if self._native:
                f = _h5.native_root(source, where)
                if f is None:
                    raise _h5meta.NotNative(where)
            else:
                f = _h5.open_file(source, where)
            index = self.add_file(f, where)

            def on_dataset(p, ds, index=index):
                self._tree.add(p, dataset=True)
                if p not in self._entries:
                    self.add_dataset(p, index, p, ds)

            def on_group(p, g):
                self._tree.add(p)
                if p == "vars" or p.endswith("/vars"):
                    name = _h5.attr_text(g, "name")
                    if name is not None:
                        self._tree.names.setdefault(p, name)

            skipped = _h5.walk(f, on_dataset, on_group)
            if skipped:
                self.metadata.setdefault("warnings", []).append(_h5.skipped_links_warning(where, skipped))
            top_vars = _h5.lookup(f, "vars", where)
            if _h5.is_group(top_vars):
                name = _h5.attr_text(top_vars, "name")
                if name is not None:
                    self._tree.names.setdefault("vars", name)
            if self._native:
                _h5.native_close(f)  # data reads open it with h5py (H5Store._dataset)

    # -- finishing -------------------------------------------------------------------------
    def finish(self) -> None:
        if not self._infos:
            raise UnsupportedError(f"Unsupported file {self.path}: it is a Keras weights file with no weights in it.")
        self.metadata.setdefault("keras_version", None)
        self.metadata.setdefault("backend", None)
        version = self.metadata["keras_version"]
        self.generation = keras_generation(version) if version else "keras3"
        self.metadata["keras_generation"] = self.generation
        self.metadata["has_config"] = isinstance(self.config, dict)
        root_cfg = self.config if isinstance(self.config, dict) else None
        self.layers = Builder(self._tree, root_cfg, self.generation, version).layers()

    def _set_version(self, meta: dict) -> None:
        for key in ("keras_version", "date_saved", "backend"):
            if isinstance(meta.get(key), str):
                self.metadata[key] = meta[key]

    # -- archive members -------------------------------------------------------------------
    def _read_small(self, zf, info) -> bytes:
        where = f"{self.path}:{info.filename}"
        if info.flag_bits & 0x1:
            raise UnsupportedError(f"Unsupported Keras archive {self.path}: {info.filename} is encrypted.")
        if info.file_size > MAX_JSON_BYTES:
            raise UnsupportedError(
                f"Unsupported Keras archive {self.path}: {info.filename} declares {info.file_size} bytes, "
                f"more than the {MAX_JSON_BYTES} bytes gruinspect reads for a JSON member.")
        try:
            with zf.open(info) as f:
                data = f.read(MAX_JSON_BYTES + 1)
        except Exception as exc:
            raise _zip_error(where, exc) from None
        return data

    def _member_source(self, zf, info):
        """A path or file object h5py/zipfile can read for one archive member, without loading it."""
        import zipfile

        where = f"{self.path}:{info.filename}"
        if info.flag_bits & 0x1:
            raise UnsupportedError(f"Unsupported Keras archive {self.path}: {info.filename} is encrypted.")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size == info.file_size:
            offset = _member_data_offset(self.path, info)
            if offset + info.file_size > os.path.getsize(self.path):
                raise TruncatedFileError(
                    f"Unexpected end of file {self.path}: member {info.filename} runs past the end; "
                    f"the file may be truncated.")
            window = _Window(self.path, offset, info.file_size)
            self._cleanup.append(window.close)
            return window
        # streamed to a temporary file, never beyond the declared size (checked below) nor the limits
        _limits.check_expansion(info.file_size, info.compress_size,
                                f"Unsupported Keras archive {self.path}: member {info.filename}")
        if self._tmpdir is None:
            import shutil
            import tempfile

            self._tmpdir = tempfile.mkdtemp(prefix="gruinspect-keras-")
            self._cleanup.append(lambda d=self._tmpdir: shutil.rmtree(d, ignore_errors=True))
        target = os.path.join(self._tmpdir, f"member-{len(os.listdir(self._tmpdir))}")
        written = 0
        try:
            with zf.open(info) as src, builtins.open(target, "wb") as dst:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > info.file_size:
                        raise InvalidFileError(f"Invalid Keras archive {self.path}: {info.filename} is longer "
                                               f"than its declared {info.file_size} bytes.")
                    dst.write(chunk)
        except GruInspectError:
            raise
        except Exception as exc:
            raise _zip_error(where, exc) from None
        return target

    # -- npz weights -----------------------------------------------------------------------
    def _open_npz(self, source, where: str) -> None:
        """A model.weights.npz whose members are plain numeric arrays named by object path."""
        import zipfile

        import numpy as np

        try:
            npz = zipfile.ZipFile(source)
        except Exception as exc:
            raise _zip_error(where, exc) from None
        self._cleanup.append(npz.close)
        for info in npz.infolist():
            if not info.filename.endswith(".npy"):
                continue
            name = info.filename[:-4]
            try:
                with npz.open(info) as m:
                    major, _minor = np.lib.format.read_magic(m)
                    read_header = (np.lib.format.read_array_header_1_0 if major == 1
                                   else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = read_header(m)
            except Exception as exc:
                raise InvalidFileError(f"Invalid numpy member {info.filename} in {where}: {exc}.") from None
            if dtype.hasobject:
                raise UnsupportedError(
                    f"Unsupported Keras weights {where}: member {info.filename} holds pickled Python objects "
                    f"(the npz weights format of Keras 3 pickles its variables), which gruinspect does not "
                    f"unpickle; save with the default .weights.h5 format instead.")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if nbytes > info.file_size:
                raise InvalidFileError(f"Invalid numpy member {info.filename} in {where}: its header declares "
                                       f"{nbytes} bytes but the member holds {info.file_size}.")
            _limits.check_expansion(info.file_size, info.compress_size, f"Unsupported Keras weights {where}: "
                                    f"member {info.filename}")
            self._npz[name] = (npz, info, where)
            self._infos[name] = TensorInfo(name, tuple(int(d) for d in shape), _h5.dtype_name(dtype))
            self._tree.add(name, dataset=True)

    def read(self, name: str):
        if name in self._npz:
            import numpy as np

            npz, info, where = self._npz[name]
            try:
                with npz.open(info) as m:
                    value = np.lib.format.read_array(m, allow_pickle=False)
            except Exception as exc:
                raise InvalidFileError(f"Invalid numpy member {info.filename} in {where}: {exc}.") from None
            self.bytes_read += value.nbytes
            return value
        return super().read(name)


# --------------------------------------------------------------------------- helpers


def _zip_error(where: str, exc: BaseException):
    if isinstance(exc, EOFError):
        return TruncatedFileError(f"Unexpected end of file {where}; the file may be truncated.")
    return InvalidFileError(f"Invalid zip member {where}: {exc}.")


def _member_data_offset(path: str, info) -> int:
    """Where a member's bytes start: after its local header, whose name/extra lengths may differ."""
    with builtins.open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    if len(header) < 30:
        raise TruncatedFileError(f"Unexpected end of file {path}; the file may be truncated.")
    if header[:4] != b"PK\x03\x04":
        raise InvalidFileError(f"Invalid zip archive {path}: bad local header for {info.filename}.")
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_len + extra_len


def _read_small_file(path: str) -> bytes:
    try:
        size = os.path.getsize(path)
        if size > MAX_JSON_BYTES:
            raise UnsupportedError(f"Unsupported file {path}: {size} bytes is too large for a Keras JSON file.")
        with builtins.open(path, "rb") as f:
            return f.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise InvalidFileError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _json_value(data: bytes, where: str):
    try:
        return _json.loads(data.decode("utf-8"), where)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidFileError(f"Invalid JSON in {where}: {exc}.") from None


def _shard_files(index, where: str) -> list[str]:
    """Shard file names of a `.weights.json` index, in first-use order; plain names only."""
    if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
        raise InvalidFileError(f"Invalid Keras sharded weights index {where}: no weight_map.")
    files: list[str] = []
    for value in index["weight_map"].values():
        for name in value if isinstance(value, list) else [value]:
            if not isinstance(name, str) or not name or name != os.path.basename(name) or name in (".", ".."):
                raise InvalidFileError(f"Invalid Keras sharded weights index {where}: bad shard name {name!r}.")
            if name not in files:
                files.append(name)
    if not files:
        raise UnsupportedError(f"Unsupported file {where}: the sharded weights index lists no shards.")
    return files


def _describe_zip(names: list[str]) -> str:
    if not names:
        return "an empty zip archive"
    if all(n.endswith(".npy") for n in names):
        return "a numpy .npz archive, not a Keras archive"
    if any(n.endswith("data.pkl") for n in names):
        return "a PyTorch zip checkpoint, not a Keras archive"
    if any(n.endswith("saved_model.pb") for n in names):
        return "a zipped SavedModel; unzip it and pass the folder"
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"a zip archive that is not a Keras archive (no config.json and model.weights.h5; it holds {shown})"
