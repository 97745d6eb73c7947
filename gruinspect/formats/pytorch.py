"""PyTorch ``torch.save`` files (zip and legacy) and TorchScript archives, read without torch.

Formats (torch/serialization.py ``_save`` / ``_legacy_save``; torch/csrc/jit/serialization):

``pytorch-zip`` (torch >= 1.6, the default)
    An uncompressed zip: ``<archive>/data.pkl`` (the object, protocol 2), ``<archive>/data/<key>``
    (each storage's raw bytes, 64-byte aligned), ``<archive>/byteorder``, ``<archive>/version``.
    ``<archive>`` is any folder name.
``pytorch-legacy`` (``_use_new_zipfile_serialization=False``, torch < 1.6)
    Pickles one after another: the magic number 0x1950a86a20f9469cfc6c, the protocol version, a
    sys-info dict, the object, the list of storage keys; then for each key, in that order, an
    int64 element count and the storage's bytes.
``torchscript`` (``torch.jit.save``)
    The zip layout plus ``code/`` and ``constants.pkl``; ``data.pkl`` builds ``__torch__.*``
    objects whose attributes are the parameters. Those objects become inert stand-ins like any
    other class (:mod:`._pickle`), so the parameters read without running the archive's code.

Every pickle goes through :class:`~._pickle.RestrictedUnpickler`, which imports and calls nothing
from the file. Storage locations (``cpu``, ``cuda:0``) do not matter: bytes are bytes. Tensors
name themselves by their path in the object (``model.encoder.gru.weight_ih_l0``), as
``state_dict()`` names them; a whole pickled model gets the same names.
"""
from __future__ import annotations

import builtins
import os
from typing import TYPE_CHECKING

from ..errors import GruInspectError, InvalidFileError, TruncatedFileError, UnsupportedError
from ..store import LayerInfo
from . import _zip
from ._offsets import OffsetStore, Placed
from ._tf_types import ITEMSIZE

if TYPE_CHECKING:
    from ._pickle import StorageRef

# zipfile, pickletools and the unpickler are imported when a file is a PyTorch file: every other
# format's detection passes through this module's sniff and should not pay for them.

FORMAT_ZIP = "pytorch-zip"
FORMAT_LEGACY = "pytorch-legacy"
FORMAT_TORCHSCRIPT = "torchscript"
FORMATS = (FORMAT_ZIP, FORMAT_LEGACY, FORMAT_TORCHSCRIPT)

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")
MAX_PICKLE_BYTES = 256 << 20  # data.pkl of a model with a million tensors is ~100 MB


def sniff(path: str) -> str | None:
    """The PyTorch format of PATH, else None: a zip with an ``<archive>/data.pkl``, or a file
    starting with the legacy magic-number pickle."""
    if not os.path.isfile(path):
        return None
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(len(_LEGACY_HEAD))
    except OSError:
        return None
    if head.startswith(_LEGACY_HEAD):
        return FORMAT_LEGACY
    if not head.startswith(b"PK\x03\x04"):
        return None
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except Exception:
        return None
    prefix = _archive_prefix(names)
    if prefix is None:
        return None
    if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
        return FORMAT_TORCHSCRIPT
    return FORMAT_ZIP


def _archive_prefix(names: list[str]) -> str | None:
    """``"<archive>/"`` of the one top-level folder holding ``data.pkl`` (torch allows any name)."""
    tops = [n[: -len("data.pkl")] for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    return tops[0] if len(tops) == 1 else None


def open(path: str, fmt: str | None = None) -> "TorchStore":  # noqa: A001 - the reader API is sniff()/open()
    fmt = fmt or sniff(path)
    if fmt not in FORMATS:
        raise UnsupportedError(f"Unsupported file {path}: it is not a PyTorch file.")
    store = TorchStore(path, fmt)
    try:
        if fmt == FORMAT_LEGACY:
            store.open_legacy()
        else:
            store.open_zip()
    except BaseException:
        store.close()
        raise
    return store


_MEMO_PUTS = ("PUT", "BINPUT", "LONG_BINPUT")


def _scan(read, where: str, size: int) -> None:
    """Walk the pickle's opcodes (never running them) so that a malformed stream or a length past
    the data fails here with one line, before the unpickler allocates what the file claims: the C
    unpickler sizes its memo by the largest index a PUT names, so a stream of ``size`` bytes may
    name no index beyond ``size``."""
    import pickletools

    try:
        for op, arg, _ in pickletools.genops(read):
            if op.name in _MEMO_PUTS and isinstance(arg, int) and arg > size:
                raise InvalidFileError(f"Invalid pickle in {where}: memo index {arg} in a pickle of {size} bytes.")
    except GruInspectError:
        raise
    except Exception as exc:
        text = str(exc).split("\n")[0]
        if "remain" in text or "truncated" in text or "EOF" in text or not text:
            raise TruncatedFileError(f"Unexpected end of file {where}: the pickle ends early; the file may be "
                                     f"truncated.") from None
        raise InvalidFileError(f"Invalid pickle in {where}: {text[:200]}.") from None


class _Bounded:
    """A read-only window on a file for pickletools: reads never ask for more than is left."""

    def __init__(self, f, size: int) -> None:
        self.f, self.size = f, size

    def read(self, n: int = -1) -> bytes:
        left = max(self.size - self.f.tell(), 0)
        return self.f.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.f.readline(max(self.size - self.f.tell(), 0))

    def tell(self) -> int:
        return self.f.tell()


class TorchStore(OffsetStore):
    """Tensors of one ``torch.save`` file (or TorchScript archive), named by their path in the object."""

    def _unpickle(self, data: bytes, where: str):
        import io

        from ._pickle import RestrictedUnpickler

        _scan(io.BytesIO(data), where, len(data))
        unpickler = RestrictedUnpickler(data, where)
        return unpickler.load_safely(), unpickler

    def _finish(self, root, unpickler, place) -> None:
        from ._pickle import collect

        found = collect(root, self.path)
        for name, ref in found.tensors.items():
            base, limit = place(ref.storage, name)
            self.add(name, Placed(base, ref.storage.dtype, ref.offset, ref.shape, ref.stride), limit)
            self.metadata.setdefault("tensor_storages", {})[name] = ref.storage.key
        locations = sorted({r.location for r in unpickler.storages.values()})
        self.metadata["storage_locations"] = locations
        self.metadata["pickled_classes"] = sorted(found.classes)
        for path, class_name, config in found.modules:
            direct = [n for n in self._infos if n.rpartition(".")[0] == path]
            self.layers.append(LayerInfo(path, class_name, dict(config), direct))
        if not found.tensors and found.classes and self.format != FORMAT_TORCHSCRIPT:
            self.metadata["note"] = "the pickle holds objects but no tensors"

    # -- zip ------------------------------------------------------------------------------
    def open_zip(self) -> None:
        import zipfile

        try:
            zf = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise InvalidFileError(f"Invalid zip archive {self.path}: {exc}.") from None
        infos = _zip.unique_members(zf, self.path, self.metadata, "PyTorch file")
        prefix = _archive_prefix(list(infos))
        if prefix is None:
            raise InvalidFileError(f"Invalid PyTorch file {self.path}: no <archive>/data.pkl member.")
        self.metadata["archive"] = prefix.rstrip("/")
        order = infos.get(f"{prefix}byteorder")
        if order is not None:
            text = self._small(zf, order, 16).decode("ascii", "replace").strip()
            if text not in ("little", "big"):
                raise InvalidFileError(f"Invalid PyTorch file {self.path}: byteorder is {text[:20]!r}.")
            self.big_endian = text == "big"
        data = self._small(zf, infos[f"{prefix}data.pkl"], MAX_PICKLE_BYTES)
        root, unpickler = self._unpickle(data, f"{self.path}:{prefix}data.pkl")
        if self.format == FORMAT_TORCHSCRIPT:
            self.metadata["note"] = ("a TorchScript archive: its parameters are read from data.pkl; its code/ is "
                                     "never run")

        def place(storage: StorageRef, name: str) -> tuple[int, int]:
            info = infos.get(f"{prefix}data/{storage.key}")
            if info is None:
                raise InvalidFileError(f"Invalid PyTorch file {self.path}: tensor {name} names storage "
                                       f"{storage.key}, which the archive does not hold.")
            if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
                raise UnsupportedError(f"Unsupported PyTorch file {self.path}: storage {info.filename} is "
                                       f"compressed or encrypted (torch.save stores storages uncompressed).")
            nbytes = storage.numel * ITEMSIZE[storage.dtype]
            if info.file_size < nbytes:
                raise InvalidFileError(f"Invalid PyTorch file {self.path}: storage {info.filename} holds "
                                       f"{info.file_size} bytes, fewer than its {storage.numel} elements need.")
            from .keras3 import _member_data_offset

            return _member_data_offset(self.path, info), nbytes

        self._finish(root, unpickler, place)

    def _small(self, zf, info, limit: int) -> bytes:
        if info.file_size > limit:
            raise UnsupportedError(f"Unsupported PyTorch file {self.path}: {info.filename} declares "
                                   f"{info.file_size} bytes, more than the {limit} gruinspect reads.")
        try:
            with zf.open(info) as f:
                data = f.read(limit + 1)
        except EOFError:
            raise TruncatedFileError(f"Unexpected end of file {self.path}:{info.filename}; the file may be "
                                     f"truncated.") from None
        except Exception as exc:
            raise InvalidFileError(f"Invalid zip member {self.path}:{info.filename}: {exc}.") from None
        return data

    # -- legacy ---------------------------------------------------------------------------
    def open_legacy(self) -> None:
        f = self._file
        window = _Bounded(f, self.size)
        parts = []
        for what in ("magic number", "protocol version", "system info", "object", "storage keys"):
            start = f.tell()
            _scan(window, f"{self.path} ({what})", self.size)
            end = f.tell()
            f.seek(start)
            parts.append(f.read(end - start))
        unpickler = None
        values = []
        for data, what in zip(parts, ("magic number", "protocol version", "system info", "object", "storage keys")):
            if what == "object":
                root, unpickler = self._unpickle(data, f"{self.path} ({what})")
                values.append(root)
            else:
                values.append(self._unpickle(data, f"{self.path} ({what})")[0])
        magic, protocol, sys_info, root, keys = values
        if magic != LEGACY_MAGIC or protocol != 1001:
            raise InvalidFileError(f"Invalid PyTorch file {self.path}: bad magic number or protocol version.")
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            self.big_endian = True
        if not isinstance(keys, list) or not all(isinstance(k, (str, int)) for k in keys):
            raise InvalidFileError(f"Invalid PyTorch file {self.path}: the storage key list is malformed.")
        storages = unpickler.storages
        roots = {k: s for k, s in storages.items() if s.view is None}
        positions: dict[str, int] = {}
        pos = f.tell()
        for key in map(str, keys):
            storage = roots.get(key)
            if storage is None:
                raise InvalidFileError(f"Invalid PyTorch file {self.path}: storage key {key} is not used by the "
                                       f"object.")
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                raise TruncatedFileError(f"Unexpected end of file {self.path}: storage {key} is missing; the file "
                                         f"may be truncated.")
            count = int.from_bytes(head, "little", signed=True)
            if count != storage.numel:
                raise InvalidFileError(f"Invalid PyTorch file {self.path}: storage {key} holds {count} elements, "
                                       f"the object says {storage.numel}.")
            positions[key] = pos + 8
            pos += 8 + count * ITEMSIZE[storage.dtype]
            if pos > self.size:
                raise TruncatedFileError(f"Unexpected end of file {self.path}: storage {key} runs past the end; "
                                         f"the file may be truncated.")

        def place(storage: StorageRef, name: str) -> tuple[int, int]:
            itemsize = ITEMSIZE[storage.dtype]
            if storage.view is not None:  # a view of a root storage: (root key, element offset)
                root_key, offset = storage.view[0], storage.view[1]
                root_ref = roots.get(str(root_key))
                if root_ref is None or str(root_key) not in positions or not isinstance(offset, int) \
                        or offset < 0 or offset + storage.numel > root_ref.numel:
                    raise InvalidFileError(f"Invalid PyTorch file {self.path}: tensor {name} is a bad view of "
                                           f"storage {root_key}.")
                return positions[str(root_key)] + offset * itemsize, storage.numel * itemsize
            if storage.key not in positions:
                raise InvalidFileError(f"Invalid PyTorch file {self.path}: storage {storage.key} of tensor {name} "
                                       f"is not in the file.")
            return positions[storage.key], storage.numel * itemsize

        self._finish(root, unpickler, place)
