"""An ONNX TensorProto's values as a numpy array (imported only when a tensor is read).

onnx.proto: ``raw_data`` holds the values little-endian, row-major; without it the values are in
one typed field: ``float_data`` (float32, complex64 as pairs), ``int32_data`` (int32 and every
narrower integer, bool, and float16 / bfloat16 as their 16-bit patterns), ``int64_data``,
``double_data`` (float64, complex128 as pairs), ``uint64_data`` (uint32, uint64). Repeated
numbers may be packed or not, as in TensorFlow's TensorProto, whose decoder reads them. Unlike TensorFlow's TensorProto there is no "last value fills the
rest": the count must match the shape (onnx ``numpy_helper.to_array`` reshapes and fails too).
"""
from __future__ import annotations

import math

import numpy as np

from ..store import numpy_dtype
from ._onnx_proto import TensorRef
from ._tensor_proto import _typed_values
from ._wire import WireError


def decode(ref: TensorRef, raw: bytes | None = None) -> np.ndarray:
    numel = math.prod(ref.shape)
    dtype = numpy_dtype(ref.dtype)
    data = raw if raw is not None else ref.raw
    if data is not None and (len(data) or not ref.typed):
        if len(data) != numel * dtype.itemsize:
            raise WireError(f"tensor {ref.name} has {len(data)} bytes for {numel} {ref.dtype} values")
        return np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(ref.shape)
    values = _typed(ref, dtype)
    if values.size != numel:
        raise WireError(f"tensor {ref.name} holds {values.size} values for {numel} elements")
    return values.reshape(ref.shape)


def _typed(ref: TensorRef, dtype: np.dtype) -> np.ndarray:
    """The typed field's values: the same packed / unpacked runs as TensorFlow's TensorProto."""
    kind = {"float32": "f4", "complex64": "f4", "float64": "f8", "complex128": "f8"}.get(ref.dtype, "varint")
    if kind == "varint":
        return _typed_values(ref.dtype, kind, ref.typed)
    values = _typed_values("float32" if kind == "f4" else "float64", kind, ref.typed)
    return values.view(dtype) if ref.dtype.startswith("complex") else values
