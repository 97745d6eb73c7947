"""One reader per file format, tried in order by :func:`detect`.

Every reader module has the same two functions: a cheap ``sniff(path)`` that looks at magic
bytes (never the suffix alone) and returns something truthy when it can read PATH, and
``open(path) -> TensorStore``. Modules are imported only when tried, so listing a TF checkpoint
never imports h5py.
"""
from __future__ import annotations

import importlib
import os

from ..errors import UnsupportedError, UsageError
from ..store import TensorStore

# Most specific first. Each name is a module in this package.
READERS: list[str] = ["tf_bundle", "saved_model", "tf_v1", "keras3", "keras_h5", "graphdef"]


def _reader(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def detect(path: str):
    """The reader module that can read PATH; raises a one-line error naming what PATH looks like."""
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        from ._tf_paths import v1_shards  # a sharded V1 prefix names `P-00000-of-0000N` files

        if not v1_shards(path):
            raise UsageError(f"No such file or folder: {path}.")
    if os.path.exists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
        # a pipe or device: reading it could block forever or never end
        raise UnsupportedError(f"Unsupported file {path}: {describe(path)}.")
    for name in READERS:
        reader = _reader(name)
        if reader.sniff(path):
            return reader
    raise UnsupportedError(f"Unsupported file {path}: {describe(path)}.")


def open_store(path: str) -> TensorStore:
    """Open PATH with the first reader whose ``sniff`` accepts it."""
    return detect(path).open(path)


_MAGIC = [
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file that is not a Keras weights file"),
    (b"PK\x03\x04", "a zip archive that is not a Keras archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x93NUMPY", "a numpy .npy array, not a checkpoint"),
    (b"\x80\x02", "a Python pickle (PyTorch files are not GRU checkpoints gruinspect reads)"),
    (b"ONNX", "an ONNX model"),
    (b"\x08", "possibly a protocol buffer (a GraphDef or SavedModel?)"),
]


def describe(path: str) -> str:
    """A short phrase saying what PATH appears to be, for "Unsupported file" messages."""
    if os.path.isdir(path):
        return "a folder with no TensorFlow checkpoint, SavedModel or Keras file in it"
    if os.path.exists(path) and not os.path.isfile(path):
        return "it is not a regular file (a pipe, socket or device)"
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if not head:
        return "the file is empty"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"it appears to be {what}"
    if path.endswith(".index"):
        return "it is named like a checkpoint index but is not a TensorFlow table (truncated or corrupted?)"
    try:
        head.decode("utf-8")
        return "it appears to be a text file"
    except UnicodeDecodeError:
        return "it is not a format gruinspect recognises"
