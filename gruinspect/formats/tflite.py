"""TensorFlow Lite models (``.tflite``): a FlatBuffer with file identifier ``TFL3``.

Read natively with the small FlatBuffers reader in :mod:`._flatbuffer` rather than the
``flatbuffers`` runtime plus code generated from ``schema.fbs``: the part of the schema this
needs is a dozen fields, a generated module would be a second copy of TensorFlow's schema to keep
in step, and the native reader checks every offset against the file, so a damaged model is a
one-line error instead of an exception from generated code. Field numbers below are those of
``tensorflow/compiler/mlir/lite/schema/schema.fbs`` (tests compare every tensor, buffer,
quantization and operator with TensorFlow's own ``flatbuffer_utils.read_model``):

    Model          1 operator_codes, 2 subgraphs, 3 description, 4 buffers (0 version)
    OperatorCode   0 deprecated_builtin_code (byte), 1 custom_code, 3 builtin_code (int);
                   the operator is max(deprecated_builtin_code, builtin_code)
    SubGraph       0 tensors, 1 inputs, 2 outputs, 3 operators, 4 name
    Tensor         0 shape, 1 type, 2 buffer, 3 name, 4 quantization, 5 is_variable, 6 sparsity
    Quantization   2 scale [float], 3 zero_point [long], 6 quantized_dimension
    Operator       0 opcode_index, 1 inputs, 2 outputs, 3 builtin_options_type (the union's type),
                   4 builtin_options (table), 5 custom_options
    Buffer         0 data [ubyte], 1 offset, 2 size: models over 2 GB keep tensor bytes after
                   the FlatBuffer, at ``offset`` from the start of the file (used when offset > 1)

The store exposes every tensor that has data (weights and other constants), named by the tensor
name (``@<subgraph>:<index>`` is appended when two tensors share a name). Quantized tensors
(int8, uint8, int16, int32 or int4 with scales) are read dequantized to float32 as TFLite's
DEQUANTIZE does (``kernels/internal/reference/dequantize.h``: ``scale * (q - zero_point)`` in
double, per channel along ``quantized_dimension``); ``metadata["quantization"]`` keeps each
one's stored dtype, scales and zero points, and :meth:`TfliteStore.read_raw` the stored values.
The operator graph is in ``store.model`` for the layouts (``gruinspect.layouts.tflite_gru``).
"""
from __future__ import annotations

import builtins
import mmap
import os
from dataclasses import dataclass, field

from ..errors import InvalidFileError, UnsupportedError
from ..store import TensorInfo, TensorStore
from . import _flatbuffer as fb
from . import check_format

FORMAT = "tflite"
FORMATS = (FORMAT,)
IDENTIFIER = b"TFL3"

# schema.fbs enum TensorType -> (numpy dtype, itemsize in bytes; 0 = not a fixed-size number)
TENSOR_TYPES = {
    0: ("float32", 4), 1: ("float16", 2), 2: ("int32", 4), 3: ("uint8", 1), 4: ("int64", 8), 5: ("string", 0),
    6: ("bool", 1), 7: ("int16", 2), 8: ("complex64", 8), 9: ("int8", 1), 10: ("float64", 8),
    11: ("complex128", 16), 12: ("uint64", 8), 13: ("resource", 0), 14: ("variant", 0), 15: ("uint32", 4),
    16: ("uint16", 2), 17: ("int4", 0), 18: ("bfloat16", 2),
}
_QUANTIZABLE = {"int8", "uint8", "int16", "int32", "int4", "uint16"}

# schema.fbs enum BuiltinOperator (the ones gruinspect's layouts look at, and common neighbours).
BUILTIN_OPERATORS = {
    0: "ADD", 2: "CONCATENATION", 3: "CONV_2D", 6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC",
    18: "MUL", 19: "RELU", 21: "RELU6", 22: "RESHAPE", 25: "SOFTMAX", 28: "TANH", 32: "CUSTOM",
    35: "UNIDIRECTIONAL_SEQUENCE_RNN", 36: "GATHER", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 43: "SQUEEZE",
    44: "UNIDIRECTIONAL_SEQUENCE_LSTM", 45: "STRIDED_SLICE", 49: "SPLIT", 52: "BIDIRECTIONAL_SEQUENCE_LSTM",
    53: "CAST", 55: "MAXIMUM", 57: "MINIMUM", 58: "LESS", 64: "SELECT", 65: "SLICE", 70: "EXPAND_DIMS", 74: "SUM",
    77: "SHAPE", 83: "PACK", 86: "LOGICAL_AND", 88: "UNPACK", 93: "ZEROS_LIKE", 94: "FILL", 102: "SPLIT_V",
    105: "REVERSE_V2", 112: "REVERSE_SEQUENCE", 114: "QUANTIZE", 117: "HARD_SWISH", 118: "IF", 119: "WHILE",
    123: "SELECT_V2", 126: "BATCH_MATMUL", 150: "GELU",
}


@dataclass(frozen=True)
class Quantization:
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int


@dataclass
class Tensor:
    subgraph: int
    index: int
    name: str
    shape: tuple[int, ...]
    type: str
    buffer: int
    quantization: Quantization | None = None
    sparse: bool = False
    is_variable: bool = False
    store_name: str | None = None  # set for tensors with data


@dataclass
class Operator:
    index: int
    opcode: str  # a BuiltinOperator name, or the custom code of a CUSTOM operator
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: object = None  # the builtin_options table (see :func:`option`)
    custom_options: bytes = b""
    where: str = ""  # "<path>: operator N of subgraph S", for errors
    options_type: int = 0  # the builtin_options union's type (schema.fbs enum BuiltinOptions)


@dataclass
class Subgraph:
    index: int
    name: str
    tensors: list[Tensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: list[Operator]


@dataclass
class Model:
    version: int
    description: str
    subgraphs: list[Subgraph]
    buffers: list[tuple[int, int]]  # (file offset, size) of each buffer's bytes; size 0 = no data
    opcodes: list[str] = field(default_factory=list)

    def data_of(self, tensor: Tensor) -> tuple[int, int]:
        return self.buffers[tensor.buffer] if 0 <= tensor.buffer < len(self.buffers) else (0, 0)


# schema.fbs enum BuiltinOptions: the options table type of each operator whose options the
# layouts read (TFLite reads them through builtin_options_as_<Type>(), which ignores another type).
OPTIONS_TYPES = {"FULLY_CONNECTED": (8, "FullyConnectedOptions"), "ADD": (11, "AddOptions"),
                 "MUL": (21, "MulOptions"), "SUB": (28, "SubOptions"), "STRIDED_SLICE": (32, "StridedSliceOptions"),
                 "WHILE": (93, "WhileOptions")}


def option(op: Operator, index: int, fmt: str, default=0):
    """Field ``index`` of an operator's builtin options (e.g. SplitOptions 0 num_splits)."""
    if op.options is None:
        return default
    try:
        return op.options.scalar(index, fmt, default)
    except fb.FlatBufferError as exc:
        raise InvalidFileError(f"Invalid TFLite model {op.where} ({op.opcode}) has damaged options: {exc}.") from None


def sniff(path: str):
    """"tflite" for a file whose bytes 4..8 are the TFLite identifier ``TFL3``."""
    if not os.path.isfile(path):
        return None
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return FORMAT if len(head) == 8 and head[4:8] == IDENTIFIER else None


def open(path: str, fmt: str | None = None) -> TfliteStore:  # noqa: A001 - the reader API is sniff()/open()
    check_format(fmt or sniff(path), FORMATS, path)
    return TfliteStore(path)


class TfliteStore(TensorStore):
    """The constant tensors of a TFLite model, dequantized, plus its operator graph."""

    format = FORMAT

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        try:
            self._file = builtins.open(path, "rb")
        except OSError as exc:
            raise InvalidFileError(f"Cannot read {path}: {exc.strerror}.") from None
        self.note_file(path)
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size < 8:
                raise InvalidFileError(f"Unexpected end of file in {path}: {size} bytes cannot hold a TFLite model; "
                                       f"the file may be truncated.")
            self._buf = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                self.model = _parse(self._buf, path)
            except fb.FlatBufferError as exc:
                raise InvalidFileError(f"Invalid TFLite model {path}: {exc}; the file may be truncated or "
                                       f"damaged.") from None
            self._index()
        except BaseException:
            self.close()
            raise

    def _index(self) -> None:
        self._tensors: dict[str, Tensor] = {}
        self._infos: dict[str, TensorInfo] = {}
        quantization: dict[str, dict] = {}
        counts: dict[str, int] = {}
        for sg in self.model.subgraphs:
            for t in sg.tensors:
                if self.model.data_of(t)[1]:
                    counts[t.name] = counts.get(t.name, 0) + 1
        for sg in self.model.subgraphs:
            for t in sg.tensors:
                offset, size = self.model.data_of(t)
                if not size:
                    continue
                name = t.name if counts[t.name] == 1 and t.name else f"{t.name}@{sg.index}:{t.index}"
                t.store_name = name
                dtype = self._check(t, size)
                self._tensors[name] = t
                self._infos[name] = TensorInfo(name, t.shape, dtype)
                if t.quantization is not None and t.type in _QUANTIZABLE:
                    q = t.quantization
                    quantization[name] = {"dtype": t.type, "scale": list(q.scale), "zero_point": list(q.zero_point),
                                          "axis": q.axis if len(q.scale) > 1 else None}
        ops: dict[str, int] = {}
        for sg in self.model.subgraphs:
            for op in sg.operators:
                ops[op.opcode] = ops.get(op.opcode, 0) + 1
        self.metadata.update({"version": self.model.version, "description": self.model.description,
                              "subgraphs": [sg.name for sg in self.model.subgraphs], "operators": ops,
                              "quantization": quantization})

    def _check(self, t: Tensor, size: int) -> str:
        """The dtype ``read`` returns for tensor ``t``, after checking its buffer fits its shape."""
        if t.type in ("string", "resource", "variant") or t.sparse:
            return "string" if t.type == "string" else t.type
        numel = 1
        for d in t.shape:
            if d < 0:
                raise InvalidFileError(f"Invalid TFLite model {self.path}: constant tensor {t.name} has shape "
                                       f"{list(t.shape)} with an unknown dimension.")
            numel *= d
        need = (numel + 1) // 2 if t.type == "int4" else numel * TENSOR_TYPES_BY_NAME[t.type]
        if size != need:
            raise InvalidFileError(f"Invalid TFLite model {self.path}: tensor {t.name} [{t.type} "
                                   f"{list(t.shape)}] needs {need} bytes but its buffer {t.buffer} holds {size}.")
        q = t.quantization
        if q is not None and t.type in _QUANTIZABLE:
            n = len(q.scale)
            per_channel = n > 1
            if len(q.zero_point) not in (0, n) or (per_channel and not (0 <= q.axis < len(t.shape)
                                                                     and t.shape[q.axis] == n)):
                raise InvalidFileError(f"Invalid TFLite model {self.path}: tensor {t.name} has {n} scales and "
                                       f"{len(q.zero_point)} zero points for shape {list(t.shape)} "
                                       f"(quantized_dimension {q.axis}).")
            return "float32"
        if t.type == "int4":
            raise UnsupportedError(f"Unsupported file {self.path}: tensor {t.name} is int4 without scales.")
        return t.type

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def tensor(self, name: str) -> Tensor:
        """The model's tensor record behind store name ``name``."""
        return self._tensors[name]

    def read_raw(self, name: str):
        """The stored values of tensor ``name`` (int8, uint8, float16... before dequantization)."""
        import numpy as np

        t = self._tensors[name]
        if t.sparse:
            raise UnsupportedError(f"Unsupported file {self.path}: tensor {t.name} is stored sparse, which "
                                   f"gruinspect does not decode.")
        if t.type in ("string", "resource", "variant"):
            raise UnsupportedError(f"Unsupported file {self.path}: tensor {t.name} holds {t.type} data.")
        offset, size = self.model.data_of(t)
        raw = self._buf[offset : offset + size]
        self.bytes_read += len(raw)
        if t.type == "int4":  # two values per byte, low nibble first, sign-extended
            b = np.frombuffer(raw, np.uint8)
            both = np.stack([b & 0x0F, b >> 4], axis=-1).reshape(-1)[: _numel(t.shape)].astype(np.int8)
            return np.where(both > 7, both - 16, both).astype(np.int8).reshape(t.shape)
        dtype = np.dtype(_numpy_type(t.type)).newbyteorder("<")
        return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("=")).reshape(t.shape)

    def read(self, name: str):
        import numpy as np

        t = self._tensors[name]
        raw = self.read_raw(name)
        q = t.quantization
        if q is None or t.type not in _QUANTIZABLE:
            return raw
        scale = np.asarray(q.scale, np.float64)
        zero = np.asarray(q.zero_point or [0] * len(q.scale), np.float64)
        if len(scale) > 1:
            shape = [1] * raw.ndim
            shape[q.axis] = len(scale)
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return (scale * (raw.astype(np.float64) - zero)).astype(np.float32)

    def close(self) -> None:
        buf = getattr(self, "_buf", None)
        if buf is not None:
            buf.close()
            self._buf = None
        f = getattr(self, "_file", None)
        if f is not None:
            f.close()
            self._file = None


TENSOR_TYPES_BY_NAME = {name: size for name, size in TENSOR_TYPES.values()}


def _numpy_type(name: str):
    if name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return name


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _parse(buf, path: str) -> Model:
    root = fb.root(buf, IDENTIFIER)
    opcodes = []
    for oc in root.tables(1):
        code = max(oc.scalar(0, "b", 0), oc.scalar(3, "i", 0))
        name = BUILTIN_OPERATORS.get(code, f"BUILTIN_{code}")
        opcodes.append(oc.string(1) or name if code == 32 else name)
    buffers = []
    for b in root.tables(4):
        span = b.vector_span(0, 1)
        offset, size = b.scalar(1, "Q", 0), b.scalar(2, "Q", 0)
        if offset > 1:
            if offset + size > len(buf):
                raise InvalidFileError(f"Invalid TFLite model {path}: buffer {len(buffers)} is stored at bytes "
                                       f"{offset}..{offset + size} after the FlatBuffer, but the file has "
                                       f"{len(buf)} bytes; the file may be truncated.")
            buffers.append((offset, size))
        elif span is not None:
            buffers.append(span)
        else:
            buffers.append((0, 0))
    subgraphs = []
    for si, sg in enumerate(root.tables(2)):
        tensors = [_tensor(si, ti, t, len(buffers), path) for ti, t in enumerate(sg.tables(0))]
        n = len(tensors)
        inputs, outputs = tuple(sg.scalars(1, "i")), tuple(sg.scalars(2, "i"))
        ops = []
        for oi, op in enumerate(sg.tables(3)):
            code = op.scalar(0, "I", 0)
            if code >= len(opcodes):
                raise InvalidFileError(f"Invalid TFLite model {path}: operator {oi} of subgraph {si} uses operator "
                                       f"code {code}, but the model lists {len(opcodes)}.")
            span = op.vector_span(5, 1)
            custom = bytes(buf[span[0] : span[0] + span[1]]) if span else b""
            ops.append(Operator(oi, opcodes[code], tuple(op.scalars(1, "i")), tuple(op.scalars(2, "i")),
                                op.table(4), custom, f"{path}: operator {oi} of subgraph {si}", op.scalar(3, "B", 0)))
            _check_options(ops[-1], path, si)
        for what, ids in [("inputs", inputs), ("outputs", outputs)] + [
                (f"operator {o.index} ({o.opcode})", o.inputs + o.outputs) for o in ops]:
            bad = [i for i in ids if not -1 <= i < n]
            if bad:
                raise InvalidFileError(f"Invalid TFLite model {path}: {what} of subgraph {si} name tensor {bad[0]}, "
                                       f"but the subgraph has {n} tensors.")
        subgraphs.append(Subgraph(si, sg.string(4), tensors, inputs, outputs, ops))
    return Model(root.scalar(0, "I", 0), root.string(3), subgraphs, buffers, opcodes)


def _check_options(op: Operator, path: str, si: int) -> None:
    """An operator's options table lies whole in the file, and is of its operator's type."""
    if op.options is None:
        return
    op.options.check_fields()
    expected = OPTIONS_TYPES.get(op.opcode)
    if expected and op.options_type != expected[0]:
        raise InvalidFileError(f"Invalid TFLite model {path}: operator {op.index} of subgraph {si} ({op.opcode}) "
                               f"has options of union type {op.options_type}, not {expected[1]} ({expected[0]}).")


def _tensor(si: int, ti: int, t: fb.Table, nbuffers: int, path: str) -> Tensor:
    code = t.scalar(1, "b", 0)
    if code not in TENSOR_TYPES:
        raise InvalidFileError(f"Invalid TFLite model {path}: tensor {ti} of subgraph {si} has type {code}.")
    buffer = t.scalar(2, "I", 0)
    name = t.string(3)
    if buffer >= nbuffers:
        raise InvalidFileError(f"Invalid TFLite model {path}: tensor {name or ti} uses buffer {buffer}, but the "
                               f"model has {nbuffers}.")
    q = t.table(4)
    quant = None
    if q is not None:
        scale = tuple(q.scalars(2, "f"))
        if scale:
            quant = Quantization(scale, tuple(q.scalars(3, "q")), q.scalar(6, "i", 0))
    return Tensor(si, ti, name, tuple(t.scalars(0, "i")), TENSOR_TYPES[code][0], buffer, quant,
                  sparse=t.has(6), is_variable=bool(t.scalar(5, "?", False)))
