"""TensorFlow's DataType enum (TF `core/framework/types.proto`) as dtype names and sizes."""
from __future__ import annotations

# types.proto DataType -> dtype name. Quantized types are read as their storage type.
DTYPES = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
    8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8", 13: "qint32",
    14: "bfloat16", 15: "qint16", 16: "quint16", 17: "uint16", 18: "complex128", 19: "float16",
    20: "resource", 21: "variant", 22: "uint32", 23: "uint64",
}
STORAGE = {"qint8": "int8", "quint8": "uint8", "qint16": "int16", "quint16": "uint16", "qint32": "int32"}
UNREADABLE = {"resource", "variant"}


def dtype_from_enum(value: int) -> str:
    return DTYPES.get(value, f"dt_{value}")


# Bytes per element of every fixed-size dtype in DTYPES (quantized types by their storage type).
# A literal table, not numpy's: importing numpy (and ml_dtypes for bfloat16) would double the
# start-up time of `gruinspect list`, which reads no tensor data.
ITEMSIZE = {"float32": 4, "float64": 8, "int32": 4, "uint8": 1, "int16": 2, "int8": 1, "complex64": 8,
            "int64": 8, "bool": 1, "bfloat16": 2, "uint16": 2, "complex128": 16, "float16": 2,
            "uint32": 4, "uint64": 8}
