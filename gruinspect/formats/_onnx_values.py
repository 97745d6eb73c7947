"""An ONNX TensorProto's values as a numpy array (imported only when a tensor is read).

onnx.proto: ``raw_data`` holds the values little-endian, row-major; without it the values are in
one typed field: ``float_data`` (float32, complex64 as pairs), ``int32_data`` (int32 and every
narrower integer, bool, and float16 / bfloat16 as their 16-bit patterns), ``int64_data``,
``double_data`` (float64, complex128 as pairs), ``uint64_data`` (uint32, uint64). Repeated
numbers may be packed or not. Unlike TensorFlow's TensorProto there is no "last value fills the
rest": the count must match the shape (onnx ``numpy_helper.to_array`` reshapes and fails too).
"""
from __future__ import annotations

import math

import numpy as np

from ..store import numpy_dtype
from ._onnx_proto import TensorRef
from ._tensor_proto import varints
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
    if ref.dtype in ("float32", "complex64", "float64", "complex128"):
        width = 4 if ref.dtype in ("float32", "complex64") else 8
        wire = np.dtype(f"<f{width}")
        parts = []
        for w, v in ref.typed:
            if w == 2:
                if len(v) % width:
                    raise WireError(f"tensor {ref.name} has a partial {ref.dtype} value")
                parts.append(np.frombuffer(v, dtype=wire))
            elif w == (5 if width == 4 else 1):
                parts.append(np.frombuffer(v.to_bytes(width, "little"), dtype=wire))
            else:
                raise WireError(f"tensor {ref.name} has values of wire type {w}")
        floats = np.concatenate(parts) if parts else np.zeros(0, wire)
        return floats.astype(wire.newbyteorder("=")).view(dtype) if ref.dtype.startswith("complex") \
            else floats.astype(dtype)
    parts = []
    for w, v in ref.typed:
        if w == 2:
            parts.append(varints(v))
        elif w == 0:
            parts.append(np.array([v], np.uint64))
        else:
            raise WireError(f"tensor {ref.name} has values of wire type {w}")
    ints = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    if ref.dtype in ("float16", "bfloat16"):
        return ints.astype(np.uint16).view(dtype)
    if ref.dtype == "bool":
        return ints != 0
    if ref.dtype in ("uint32", "uint64"):
        return ints.astype(dtype)
    return ints.view(np.int64).astype(dtype)
