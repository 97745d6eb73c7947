"""Zero-copy protobuf field scanning and ``TensorProto`` decoding.

Shared by the V1 checkpoint reader (``SavedSlice.data``), the frozen GraphDef reader (``Const``
node ``value`` attributes) and the SavedModel reader (which walks `saved_model.pb` without
copying its graph). :func:`fields` walks a message held in a ``memoryview`` and hands out
sub-messages as memoryview slices, so nothing is copied until a tensor is actually decoded.

TensorProto (TF `core/framework/tensor.proto`, docs/tf-checkpoints.md): dtype = 1, tensor_shape = 2,
version_number = 3, tensor_content = 4 (raw little-endian bytes), then one typed repeated field
per dtype family: float_val 5, double_val 6, int_val 7, string_val 8, scomplex_val 9,
int64_val 10, bool_val 11, dcomplex_val 12, half_val 13 (half and bfloat16 bit patterns),
uint32_val 16, uint64_val 17. Repeated numbers may be packed or not. When fewer values than
elements are stored, the last value fills the rest (TF's ``Tensor::FromProto`` and
``tensor_util.MakeNdarray`` both do this; Const nodes rely on it for splat constants).
"""
from __future__ import annotations

import builtins
import math
import mmap
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import UnsupportedError
from ..store import numpy_dtype
from ._tf_types import STORAGE
from ._wire import TruncatedWireError, WireError, iter_fields  # noqa: F401 (TruncatedWireError re-exported)


MAX_PROTO_BYTES = 2 << 30  # protobuf refuses to parse a message over 2 GiB (its int32 sizes)


def map_file(path: str) -> memoryview:
    """The bytes of a serialized protobuf file, memory-mapped: the parser touches only the pages it
    decodes, so a sparse or padded file is never read whole. Raises OSError like ``open``."""
    with builtins.open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_PROTO_BYTES:
            raise UnsupportedError(f"Unsupported file {path}: {size} bytes, more than the {MAX_PROTO_BYTES} "
                                   f"bytes a protobuf message can hold.")
        if not size:
            return memoryview(b"")
        return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def fields(buf) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field, wire_type, value)`` for one message; LEN values are memoryview slices."""
    return iter_fields(buf if isinstance(buf, memoryview) else memoryview(buf))


def text(value) -> str:
    try:
        return bytes(value).decode("utf-8")
    except (UnicodeDecodeError, TypeError):
        raise WireError("a name is not valid UTF-8 text") from None


def shape_of(view) -> tuple[int, ...] | None:
    """TensorShapeProto -> dims (None when the rank is unknown); dim = 2 {size = 1}, unknown_rank = 3."""
    dims = []
    for field, wire_type, value in fields(view):
        if field == 2 and wire_type == 2:
            size = 0
            for f, w, v in fields(value):
                if f == 1 and w == 0:
                    size = v - (1 << 64) if v >= 1 << 63 else v
            dims.append(size)
        elif field == 3 and wire_type == 0 and value:
            return None
    return tuple(dims)


def header(view) -> tuple[int, tuple[int, ...] | None]:
    """``(dtype enum, shape)`` of a TensorProto without touching its values."""
    dtype, shape = 0, ()
    for field, wire_type, value in fields(view):
        if field == 1 and wire_type == 0:
            dtype = value
        elif field == 2 and wire_type == 2:
            shape = shape_of(value)
    return dtype, shape


if TYPE_CHECKING:
    import numpy as np


# dtype name -> (TensorProto field, kind). kind says how the wire values are read.
_TYPED = {
    "float32": (5, "f4"), "float64": (6, "f8"), "complex64": (9, "f4"), "complex128": (12, "f8"),
    "int32": (7, "varint"), "int16": (7, "varint"), "int8": (7, "varint"), "uint8": (7, "varint"),
    "uint16": (7, "varint"), "qint8": (7, "varint"), "quint8": (7, "varint"),
    "qint16": (7, "varint"), "quint16": (7, "varint"), "qint32": (7, "varint"),
    "int64": (10, "varint"), "bool": (11, "varint"), "float16": (13, "varint"),
    "bfloat16": (13, "varint"), "uint32": (16, "varint"), "uint64": (17, "varint"),
    "string": (8, "bytes"),
}


def storage_dtype(dtype: str) -> np.dtype:
    """numpy dtype the values of ``dtype`` are returned in (quantized types as their storage)."""
    return numpy_dtype(STORAGE.get(dtype, dtype))


def varints(raw) -> np.ndarray:
    """Decode a packed run of base-128 varints into uint64 values, vectorised."""
    import numpy as np

    a = np.frombuffer(raw, dtype=np.uint8)
    if a.size == 0:
        return np.zeros(0, np.uint64)
    if a[-1] & 0x80:
        raise WireError("packed varints run past the end of their field")
    last = a < 0x80
    if last.all():
        return a.astype(np.uint64)
    group = np.concatenate(([0], np.cumsum(last[:-1])))
    starts = np.concatenate(([0], np.flatnonzero(last)[:-1] + 1))
    place = np.arange(a.size) - starts[group]
    if place.max() > 9:
        raise WireError("varint longer than 10 bytes")
    out = np.zeros(int(last.sum()), np.uint64)
    np.bitwise_or.at(out, group, (a & 0x7F).astype(np.uint64) << (7 * place).astype(np.uint64))
    return out


def _from_ints(values: np.ndarray, dtype: str) -> np.ndarray:
    import numpy as np

    if dtype == "bool":
        return values != 0
    if dtype in ("float16", "bfloat16"):
        return values.astype(np.uint16).view(numpy_dtype(dtype))
    if dtype in ("uint32", "uint64"):
        return values.astype(storage_dtype(dtype))
    # int_val / int64_val hold sign-extended 64-bit varints; wrap to the storage width.
    return values.view(np.int64).astype(storage_dtype(dtype))


# A Const may legitimately store one value for a large splat tensor; beyond this many bytes the
# expansion is refused rather than risking memory on a corrupted shape.
MAX_FILL_BYTES = 1 << 30


def decode(view, dtype: str, shape: tuple[int, ...], *, what: str = "tensor", fill: bool = True) -> np.ndarray:
    """The values of a TensorProto as an array of ``shape``.

    ``dtype`` is the dtype name (from the proto itself or from the container); the proto's own
    shape is ignored here (callers check it). With ``fill`` (Const nodes), fewer stored values
    than elements repeat the last one; without it (V1 slices) the counts must match. Raises
    :class:`WireError` on malformed data.
    """
    import numpy as np

    numel = math.prod(shape)
    values, complete = stored_values(view, dtype, shape, what=what)
    if complete:
        return values
    count = values.shape[0]
    if count > numel or not fill:
        raise WireError(f"{what} holds {count} values for {numel} elements")
    if numel * values.dtype.itemsize > MAX_FILL_BYTES:
        raise WireError(f"{what} would expand {count} stored values to {numel} elements")
    out = np.empty(numel, dtype=values.dtype)
    if count == 0:
        out[...] = b"" if dtype == "string" else 0
    else:
        out[:count] = values
        out[count:] = values[-1]
    return out.reshape(shape)


def stored_values(view, dtype: str, shape: tuple[int, ...], *, what: str = "tensor") -> tuple[np.ndarray, bool]:
    """``(values, complete)``: the tensor of ``shape`` when the TensorProto stores every value,
    else the 1-D run of values it does store (a splat constant: the last one repeats), unexpanded."""
    import numpy as np

    numel = math.prod(shape)
    if dtype not in _TYPED:
        raise WireError(f"dtype {dtype} cannot be decoded from a TensorProto")
    number, kind = _TYPED[dtype]
    content = None
    runs: list = []  # (wire_type, value) in wire order: packed and unpacked runs may mix
    for field, wire_type, value in fields(view):
        if field == 4 and wire_type == 2:
            content = value
        elif field == number:
            runs.append((wire_type, value))
    if content is not None and len(content):
        if dtype == "string":
            raise WireError("string tensors cannot use tensor_content")
        np_dtype = storage_dtype(dtype).newbyteorder("<")
        if len(content) != numel * np_dtype.itemsize:
            raise WireError(f"{what} has {len(content)} content bytes for {numel} {dtype} values")
        return np.frombuffer(content, dtype=np_dtype).astype(storage_dtype(dtype)).reshape(shape), True
    values = _typed_values(dtype, kind, runs)
    if dtype.startswith("complex"):
        if values.size % 2:
            raise WireError(f"{what} has an odd number of complex components")
        values = values.view(storage_dtype(dtype))
    if values.shape[0] == numel:
        return values.reshape(shape), True
    return values, False


def _typed_values(dtype: str, kind: str, runs: list) -> np.ndarray:
    import numpy as np

    if kind == "bytes":
        out = np.empty(len(runs), dtype=object)
        for i, (wire_type, value) in enumerate(runs):
            if wire_type != 2:
                raise WireError("string values with a non-length wire type")
            out[i] = bytes(value)
        return out
    parts = []
    if kind == "varint":
        for wire_type, value in runs:
            if wire_type == 2:
                parts.append(varints(value))
            elif wire_type == 0:
                parts.append(np.array([value], np.uint64))
            else:
                raise WireError(f"wire type {wire_type} for {dtype} values")
        ints = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        return _from_ints(ints, dtype)
    width = 4 if kind == "f4" else 8
    float_type = np.dtype("<f4") if width == 4 else np.dtype("<f8")
    for wire_type, value in runs:
        if wire_type == 2:
            if len(value) % width:
                raise WireError(f"packed {dtype} values are not a whole number of {width}-byte words")
            parts.append(np.frombuffer(value, dtype=float_type))
        elif wire_type == (5 if width == 4 else 1):
            parts.append(np.frombuffer(value.to_bytes(width, "little"), dtype=float_type))
        else:
            raise WireError(f"wire type {wire_type} for {dtype} values")
    values = np.concatenate(parts) if parts else np.zeros(0, float_type)
    return values.astype(float_type.newbyteorder("="))
