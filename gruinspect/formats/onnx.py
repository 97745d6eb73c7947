"""ONNX models (`.onnx`), read natively: no onnx package, nothing executed.

The file is one ``ModelProto`` (schema in :mod:`._onnx_proto`). It is memory-mapped and walked
field by field, so listing a 400 MB model touches only the pages that hold names, shapes and
attributes; tensor values stay in place until ``read``. The store holds:

- every initializer of the main graph and of every body graph (``Loop`` / ``Scan`` / ``If``
  attributes), and every ``Constant`` node's ``value`` tensor, named by the initializer or by the
  Constant's output (a name already taken by an outer graph becomes ``<body path>/<name>``);
- ``store.graph``: the nodes of every graph (op, inputs, outputs, attributes) for the layouts,
  with :meth:`~._onnx_proto.Graph.resolve` following ``Identity`` chains to a stored tensor.

Values come from ``raw_data`` (little-endian) or from the typed fields (``float_data``;
``int32_data`` holding float16 / bfloat16 bit patterns; ``double_data``...). External data
(``data_location`` = EXTERNAL, onnx ``external_data_helper.py``) is read from ``location``,
relative to the model's folder: absolute paths, paths through ``..`` and links that leave the
folder are refused, and ``offset`` / ``length`` are checked against the file at open time.
"""
from __future__ import annotations

import builtins
import mmap
import os
import re

from .._paths import is_within
from ..errors import InvalidFileError, TruncatedFileError, UnsupportedError
from . import check_format
from ..store import TensorInfo, TensorStore
from . import _onnx_proto as proto
from ._wire import TruncatedWireError, WireError, read_varint

FORMAT = "onnx"
FORMATS = (FORMAT,)
_SNIFF_BYTES = 1 << 16
_DRIVE = re.compile(r"[A-Za-z]:")


def sniff(path: str) -> str | None:
    """FORMAT when PATH is a file whose top-level fields are those of a ModelProto: an
    ``ir_version`` varint first, a graph, and no field of another number or wire type."""
    if not os.path.isfile(path):
        return None
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    if head[:1] != b"\x08":
        return None
    pos, seen = 0, set()
    try:
        while pos < len(head):
            key, pos = read_varint(head, pos)
            number, wire = key >> 3, key & 7
            if proto.MODEL_FIELDS.get(number) != wire:
                return None
            if wire == 0:
                value, pos = read_varint(head, pos)
                if number == 1 and not 1 <= value <= 64:
                    return None
            else:
                length, pos = read_varint(head, pos)
                if pos + length > size:
                    return None
                if number in (2, 3) and length <= len(head) - pos:
                    try:
                        head[pos:pos + length].decode("utf-8")
                    except UnicodeDecodeError:
                        return None
                pos += length
            seen.add(number)
    except WireError:
        return None
    if pos < len(head):
        return None
    if pos >= size and 7 not in seen:
        return None
    return FORMAT if 1 in seen else None


def open(path: str, fmt: str | None = None) -> "OnnxStore":  # noqa: A001 - the reader API
    check_format(fmt or sniff(path), FORMATS, path)
    return OnnxStore(path)


class OnnxStore(TensorStore):
    """Initializers and Constant values of every graph of an ONNX model."""

    format = FORMAT

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self._refs: dict[str, proto.TensorRef] = {}
        self._infos: dict[str, TensorInfo] = {}
        self._mm = None
        try:
            self.note_file(path)
            with builtins.open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size:
                    self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise InvalidFileError(f"Cannot read {path}: {getattr(exc, 'strerror', None) or exc}.") from None
        try:
            self._load()
        except TruncatedWireError as exc:
            self.close()
            raise TruncatedFileError(f"Unexpected end of file {path} ({exc}); the file may be truncated.") from None
        except WireError as exc:
            self.close()
            raise InvalidFileError(f"Invalid ONNX model {path}: {exc}.") from None
        except Exception:
            self.close()
            raise

    # ------------------------------------------------------------------ structure

    def _load(self) -> None:
        model = proto.model(memoryview(self._mm) if self._mm is not None else memoryview(b""))
        self.graph = model.graph
        self.metadata.update({"ir_version": model.ir_version, "producer_name": model.producer_name,
                              "producer_version": model.producer_version, "opsets": model.opsets})
        ops: dict[str, int] = {}
        for graph in self.graph.walk():
            for ref in graph.initializers:
                if not ref.name:
                    raise WireError(f"an initializer of graph {graph.path or graph.name or '(main)'} has no name")
                graph.constants[ref.name] = self._add(ref, graph)
            for node in graph.nodes:
                ops[node.op_type] = ops.get(node.op_type, 0) + 1
                if node.op_type == "Constant" and "value" in node.tensors and node.outputs:
                    ref = node.tensors["value"]
                    ref.name = node.outputs[0]
                    graph.constants[ref.name] = self._add(ref, graph)
        self.metadata["ops"] = dict(sorted(ops.items()))
        sparse = sum(g.sparse_initializers for g in self.graph.walk())
        if sparse:
            self.metadata["sparse_initializers"] = sparse

    def _add(self, ref: proto.TensorRef, graph: proto.Graph) -> str:
        name = ref.name
        if name in self._refs:
            name = f"{graph.path}{ref.name}" if graph.path else ref.name
            if name in self._refs:
                raise WireError(f"tensor {ref.name} is defined twice in graph {graph.path or '(main)'}")
        self._check(ref)
        self._refs[name] = ref
        self._infos[name] = TensorInfo(name, ref.shape, ref.dtype)
        return name

    def _check(self, ref: proto.TensorRef) -> None:
        """Sizes that can be checked without reading values: raw_data, fixed-width typed fields,
        and the external file's extent."""
        if ref.segmented:
            raise UnsupportedError(f"Unsupported segmented tensor {ref.name} in {self.path}.")
        itemsize = proto.TYPED_FIELD.get(ref.dtype, (0, 0))[1]
        numel = 1
        for d in ref.shape:
            numel *= d
        if ref.external is not None:
            self._external_extent(ref, numel * itemsize if itemsize else None)
            return
        if ref.raw is not None and len(ref.raw) and itemsize and len(ref.raw) != numel * itemsize:
            raise WireError(f"tensor {ref.name} has {len(ref.raw)} bytes of raw_data for {numel} {ref.dtype} values")
        if ref.dtype in ("float32", "float64", "complex64", "complex128") and not (ref.raw is not None and len(ref.raw)):
            width = 4 if ref.dtype in ("float32", "complex64") else 8
            count = sum(len(v) // width if w == 2 else 1 for w, v in ref.typed)
            if count != numel * (2 if ref.dtype.startswith("complex") else 1):
                raise WireError(f"tensor {ref.name} holds {count} values for {numel} elements")

    def _external_path(self, ref: proto.TensorRef) -> str:
        location = ref.external.get("location", "")
        where = f"external data of tensor {ref.name} in {self.path}"
        if not location or "\x00" in location:
            raise InvalidFileError(f"Invalid {where}: it names no file.")
        if os.path.isabs(location) or location.startswith(("/", "\\")) or _DRIVE.match(location):
            raise InvalidFileError(f"Invalid {where}: the absolute path {location!r} is refused "
                                   "(external data must be relative to the model's folder).")
        if ".." in re.split(r"[\\/]", location):
            raise InvalidFileError(f"Invalid {where}: {location!r} leaves the model's folder.")
        full = os.path.join(self.folder, location)
        if not is_within(self.folder, full):
            raise InvalidFileError(f"Invalid {where}: {location!r} links outside the model's folder.")
        if not os.path.isfile(full):
            raise InvalidFileError(f"Invalid {where}: the file {location!r} is missing.")
        return full

    def _external_extent(self, ref: proto.TensorRef, nbytes: int | None) -> tuple[str, int, int]:
        full = self._external_path(ref)
        where = f"external data of tensor {ref.name} in {self.path}"
        try:
            offset = int(ref.external.get("offset", "0") or 0)
            length = int(ref.external["length"]) if ref.external.get("length") else None
        except ValueError:
            raise InvalidFileError(f"Invalid {where}: offset and length must be numbers.") from None
        size = os.path.getsize(full)
        if offset < 0 or (length is not None and length < 0):
            raise InvalidFileError(f"Invalid {where}: negative offset or length.")
        if length is None:
            length = size - offset
        if offset + length > size:
            raise TruncatedFileError(f"Unexpected end of file {full}: {where} needs bytes {offset}..{offset + length} "
                                     f"of a {size}-byte file; the file may be truncated.")
        if nbytes is not None and length != nbytes:
            raise InvalidFileError(f"Invalid {where}: {length} bytes for {nbytes // max(1, proto.TYPED_FIELD[ref.dtype][1])}"
                                   f" {ref.dtype} values.")
        return full, offset, length

    # ------------------------------------------------------------------ data

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def read(self, name: str):
        from ._onnx_values import decode

        ref = self._refs[name]
        if ref.dtype not in proto.TYPED_FIELD:
            raise UnsupportedError(f"Unsupported dtype {ref.dtype} for tensor {name} in {self.path}.")
        try:
            if ref.external is not None:
                full, offset, length = self._external_extent(ref, None)
                self.note_file(full)
                with builtins.open(full, "rb") as f:
                    raw = os.pread(f.fileno(), length, offset)
                if len(raw) != length:
                    raise TruncatedFileError(f"Unexpected end of file {full}; the file may be truncated.")
                array = decode(ref, raw=raw)
            else:
                array = decode(ref)
        except WireError as exc:
            raise InvalidFileError(f"Invalid ONNX model {self.path}: {exc}.") from None
        self.bytes_read += array.nbytes
        return array

    def close(self) -> None:
        self._refs.clear()
        graph = getattr(self, "graph", None)
        if graph is not None:
            for g in graph.walk():
                g.initializers.clear()
                for n in g.nodes:
                    n.tensors.clear()
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a memoryview slice is still referenced: the mapping goes with it
                pass
            self._mm = None
