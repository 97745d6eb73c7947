"""One reader per file format, tried in order by :func:`detect`.

Every reader module has the same API:

- ``FORMATS``: the format names it can return, e.g. ``("tf-checkpoint-v2", "tf-object-checkpoint")``;
- ``sniff(path) -> str | None``: a cheap look at the content (magic bytes, a table's first
  entry, never the suffix alone) naming the format found, or None when PATH is not for it;
- ``open(path, fmt=None) -> TensorStore``: a store whose ``format`` is ``fmt`` (as sniffed when
  None), so the name :func:`detect` reports is the one the store keeps.

A reader may claim a file it will then refuse (the Keras readers claim every HDF5 and zip file) so
that the error says what the file is. Modules are imported only when tried, so listing a TF
checkpoint never imports h5py. Adding a reader is one module plus one line in :data:`READERS`
(CONTRIBUTING.md).
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NamedTuple

from ..errors import UnsupportedError, UsageError
from ..store import TensorStore

# Most specific first. Each name is a module in this package.
READERS: list[str] = ["pytorch", "safetensors", "tf_bundle", "onnx", "saved_model", "tf_v1", "keras3", "keras_h5", "tfjs", "tflite", "graphdef"]


class Detected(NamedTuple):
    """The reader module that claims a path and the format name its ``sniff`` found."""

    reader: ModuleType
    format: str


def _reader(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def detect(path: str) -> Detected:
    """The reader that can read PATH and the format it found; raises a one-line error naming
    what PATH looks like when no reader claims it."""
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        from ._tf_paths import v1_shards  # a sharded V1 prefix names `P-00000-of-0000N` files

        if not v1_shards(path):
            raise UsageError(f"No such file or folder: {path}.")
    if os.path.exists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
        # a pipe or device: reading it could block forever or never end
        raise UnsupportedError(f"Unsupported file {path}: {describe(path)}.")
    for name in READERS:
        reader = _reader(name)
        fmt = reader.sniff(path)
        if fmt:
            return Detected(reader, fmt)
    raise UnsupportedError(f"Unsupported file {path}: {describe(path)}.")


def open_store(path: str) -> TensorStore:
    """Open PATH with the first reader whose ``sniff`` claims it; ``store.format`` is what it found."""
    reader, fmt = detect(path)
    store = reader.open(path, fmt)
    # A `checkpoint` state file may name any path, as TensorFlow allows, and a link may lead out:
    # every file read outside what the user named is one warning, shards opened later included.
    store.watch_named(path)
    return store


def check_format(fmt: str | None, formats: tuple[str, ...], path: str) -> str:
    """``fmt`` when it is one of a reader's ``formats``; the error for ``open(path, fmt)`` otherwise
    (None: the reader's ``sniff`` did not recognise PATH)."""
    if fmt is None:
        raise UnsupportedError(f"Unsupported file {path}: {describe(path)}.")
    if fmt not in formats:
        raise UsageError(f"Unknown format {fmt!r} for {path}; this reader opens {', '.join(formats)}.")
    return fmt


_MAGIC = [
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file that is not a Keras weights file"),
    (b"PK\x03\x04", "a zip archive that is not a Keras archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x93NUMPY", "a numpy .npy array, not a checkpoint"),
    (b"\x80", "a Python pickle that is not a PyTorch file (gruinspect never unpickles plain pickles)"),
    (b"\x08", "possibly a protocol buffer (an ONNX model, GraphDef or SavedModel?)"),
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
