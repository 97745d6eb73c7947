"""TF1 frozen GraphDef (`.pb`): the weights are the `value` attributes of `Const` nodes.

A frozen graph (`tf.compat.v1.graph_util.convert_variables_to_constants`, `freeze_graph.py`)
replaces every variable by a `Const` node of the same name, so `rnn/gru_cell/gates/kernel` stays
`rnn/gru_cell/gates/kernel` and the GRU layouts find it as in a checkpoint. Schema (TF
`core/framework/{graph,node_def,attr_value,tensor}.proto`):

    GraphDef { node = 1: NodeDef, library = 2, version = 3 (deprecated), versions = 4 }
    NodeDef { name = 1, op = 2, input = 3, device = 4, attr = 5: map<string, AttrValue> }
    AttrValue { ..., type = 6, shape = 7, tensor = 8: TensorProto, ... }

Every top-level `Const` node is one tensor named by the node (a Const named `X/read` whose `X`
is not a node, as left by some graph rewriters, is exposed as `X`). Functions in the library
are not searched. The file is read whole (it is one protobuf), but listing decodes only each
constant's dtype and shape; values stay in place (memoryviews) until ``read``.
"""
from __future__ import annotations

import builtins
import math
import os
import re
import threading
from typing import TYPE_CHECKING

from ..errors import InvalidFileError, TruncatedFileError, UnsupportedError
from ..store import TensorInfo, TensorStore
from . import _tensor_proto, _wire, check_format
from ._tf_types import dtype_from_enum

if TYPE_CHECKING:
    import numpy as np

FORMAT = "tf-frozen-graph"
FORMATS = (FORMAT,)
_NODE_NAME = re.compile(rb"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*\Z")
_OP_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*\Z")
_SNIFF_BYTES = 4096


def sniff(path: str) -> str | None:
    """"tf-frozen-graph" when PATH is a file starting like a GraphDef: field 1 (node) holding a NodeDef whose
    first fields are a plausible node name and op name. A SavedModel (field 1 is a varint), a
    MetaGraphDef or keras_metadata.pb (other first fields) do not pass."""
    if not os.path.isfile(path):
        return None
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    try:
        if head[:1] != b"\x0a":
            return None
        length, pos = _wire.read_varint(head, 1)
        if length < 4 or pos + length > size:
            return None
        node = head[pos : pos + length]
        if node[:1] != b"\x0a":
            return None
        name_len, p = _wire.read_varint(node, 1)
        name = node[p : p + name_len]
        p += name_len
        if len(name) != name_len or not _NODE_NAME.match(name) or node[p : p + 1] != b"\x12":
            return None
        op_len, p = _wire.read_varint(node, p + 1)
        op = node[p : p + op_len]
        if len(op) != op_len or not 0 < op_len <= 128 or not _OP_NAME.match(op):
            return None
    except _wire.WireError:
        return None
    return FORMAT


def open(path: str, fmt: str | None = None) -> "GraphDefStore":  # noqa: A001 - the reader API
    if sniff(path) is None:
        raise InvalidFileError(f"Invalid frozen GraphDef {path}: it does not start with a graph node.")
    check_format(fmt or FORMAT, FORMATS, path)
    return GraphDefStore(path)


class GraphDefStore(TensorStore):
    """The Const nodes of a frozen GraphDef as tensors, named by their nodes."""

    format = FORMAT

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        try:
            self.note_file(path)
            self._data = _tensor_proto.map_file(path)
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {path}: {exc.strerror}.") from None
        self._values: dict[str, memoryview] = {}
        self._infos: dict[str, TensorInfo] = {}
        try:
            self._load()
        except _tensor_proto.TruncatedWireError as exc:
            raise TruncatedFileError(f"Unexpected end of file {path} ({exc}); the file may be truncated.") from None
        except _wire.WireError as exc:
            raise InvalidFileError(f"Invalid frozen GraphDef {path}: {exc}.") from None

    def _load(self) -> None:
        consts: dict[str, tuple[str, tuple[int, ...], memoryview]] = {}
        node_names: set[str] = set()
        ops: dict[str, int] = {}
        for field, wire_type, value in _tensor_proto.fields(memoryview(self._data)):
            if field == 4 and wire_type == 2:
                for f, w, v in _tensor_proto.fields(value):
                    if f == 1 and w == 0:
                        self.metadata["graph_producer"] = v
            if field != 1 or wire_type != 2:
                continue
            name, op, tensor, attr_dtype = "", "", None, 0
            for f, w, v in _tensor_proto.fields(value):
                if f == 1 and w == 2:
                    name = _tensor_proto.text(v)
                elif f == 2 and w == 2:
                    op = _tensor_proto.text(v)
                elif f == 5 and w == 2:
                    key, attr = _map_entry(v)
                    if key == "value":
                        tensor = _attr_field(attr, 8)
                    elif key == "dtype":
                        attr_dtype = _attr_field(attr, 6) or 0
            if not name:
                raise _wire.WireError("a node has no name")
            if name in node_names:
                raise _wire.WireError(f"node {name} appears twice")
            node_names.add(name)
            ops[op] = ops.get(op, 0) + 1
            if op != "Const":
                continue
            if not isinstance(tensor, memoryview):
                raise _wire.WireError(f"Const node {name} has no value")
            enum, shape = _tensor_proto.header(tensor)
            if shape is None:
                raise _wire.WireError(f"Const node {name} has a tensor of unknown rank")
            if any(d < 0 for d in shape):
                raise _wire.WireError(f"Const node {name} has a negative dimension in {list(shape)}")
            consts[name] = (dtype_from_enum(enum or attr_dtype), shape, tensor)
        renamed = {}
        for name, (dtype, shape, tensor) in consts.items():
            exposed = name
            if name.endswith("/read") and name[: -len("/read")] not in node_names:
                exposed = name[: -len("/read")]
                renamed[exposed] = name
            self._values[exposed] = tensor
            self._infos[exposed] = TensorInfo(exposed, shape, dtype)
        self.metadata["num_nodes"] = len(node_names)
        self.metadata["ops"] = dict(sorted(ops.items()))
        if renamed:
            self.metadata["node_names"] = renamed

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def read(self, name: str) -> np.ndarray:
        info = self._infos[name]
        if info.dtype not in _tensor_proto._TYPED:
            raise UnsupportedError(f"Unsupported dtype {info.dtype} for constant {name} in {self.path}.")
        try:
            array = _tensor_proto.decode(self._values[name], info.dtype, info.shape, what=f"constant {name}")
        except _wire.WireError as exc:
            raise InvalidFileError(f"Invalid frozen GraphDef {self.path}: {exc}.") from None
        self.bytes_read += array.nbytes
        return array

    def row_reader(self, name: str):
        """Rows of a splat constant (fewer stored values than elements, the last repeating), made
        a few MiB at a time: ``stats`` and ``split`` never materialise a 600-byte constant that
        claims hundreds of MiB. None for every other constant (read whole)."""
        info = self._infos.get(name)
        if info is None or info.dtype == "string" or len(info.shape) not in (1, 2):
            return None
        try:
            values, complete = _tensor_proto.stored_values(self._values[name], info.dtype, info.shape,
                                                           what=f"constant {name}")
        except _wire.WireError as exc:
            raise InvalidFileError(f"Invalid frozen GraphDef {self.path}: {exc}.") from None
        if complete or values.shape[0] > math.prod(info.shape) or info.nbytes > _tensor_proto.MAX_FILL_BYTES:
            return None  # read() says what is wrong with too many values, or a fill beyond the limit
        return _SplatRows(self, info.shape, values)

    def close(self) -> None:
        self._values.clear()


class _SplatRows:
    """The row reader (``blocks.map_blocks``) of a splat constant: element i is ``values[i]``
    while stored, then the last stored value (0 when none is); a 1-D tensor's rows are elements."""

    def __init__(self, store: GraphDefStore, shape: tuple[int, ...], values: np.ndarray) -> None:
        self.store, self.shape, self._values = store, tuple(shape), values
        self.dtype = values.dtype
        self._lock = threading.Lock()  # read_rows runs on the worker threads
        self._row = math.prod(self.shape[1:])
        self.row_bytes = self._row * self.dtype.itemsize

    def read_rows(self, start: int, stop: int, out):
        import numpy as np

        flat = out.reshape(-1).view(np.uint8)[: (stop - start) * self.row_bytes].view(self.dtype)
        first = start * self._row
        count = self._values.shape[0]
        flat[:] = self._values[-1] if count else 0
        if first < count:
            head = self._values[first: first + flat.shape[0]]
            flat[: head.shape[0]] = head
        with self._lock:
            self.store.bytes_read += flat.nbytes
        return flat.reshape((stop - start,) + self.shape[1:])

    def verify(self, buffer) -> None:  # a constant has no checksum
        return None


def _map_entry(view) -> tuple[str, memoryview | None]:
    key, value = "", None
    for f, w, v in _tensor_proto.fields(view):
        if f == 1 and w == 2:
            key = _tensor_proto.text(v)
        elif f == 2 and w == 2:
            value = v
    return key, value


def _attr_field(attr, number: int):
    if attr is None:
        return None
    found = None
    for f, _, v in _tensor_proto.fields(attr):
        if f == number:
            found = v
    return found
