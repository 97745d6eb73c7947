"""What every reader returns: a flat, lazy ``name -> tensor`` map plus what the file says of layers.

Readers know containers, never gates; layouts (``gruinspect.layouts``) give the names meaning.
"""
from __future__ import annotations

import math
import os
import threading
from typing import TYPE_CHECKING, NamedTuple

# numpy is imported inside the functions that need it: `gruinspect list` never does (start-up time).
if TYPE_CHECKING:
    import numpy as np


# Records here and in the modules `list` imports are NamedTuples or plain classes, not
# dataclasses: a dataclass compiles its methods when its module is imported (about 1 ms each),
# which is most of a `list` run's time beyond Python's own start-up.
class TensorInfo(NamedTuple):
    """Name, shape and dtype of one stored tensor, known without reading its data."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * dtype_itemsize(self.dtype)


class LayerInfo:
    """What a file says about one layer: its user name, class, config and weights (store names)."""

    __slots__ = ("name", "class_name", "config", "weights")

    def __init__(self, name: str, class_name: str, config: dict | None = None, weights: list[str] | None = None):
        self.name, self.class_name = name, class_name
        self.config: dict = {} if config is None else config
        self.weights: list[str] = [] if weights is None else weights

    def __repr__(self) -> str:
        return (f"LayerInfo(name={self.name!r}, class_name={self.class_name!r}, config={self.config!r}, "
                f"weights={self.weights!r})")

    def __eq__(self, other) -> bool:
        if not isinstance(other, LayerInfo):
            return NotImplemented
        return (self.name, self.class_name, self.config, self.weights) == \
            (other.name, other.class_name, other.config, other.weights)

    __hash__ = None  # mutable: not hashable


class TensorStore:
    """A lazily read set of tensors from one file or folder.

    Subclasses set ``path`` and ``format`` and implement :meth:`infos` and :meth:`read`.
    ``layers`` lists layer records when the file has them (Keras); ``metadata`` holds file-level
    facts such as the writer's version. Readers call :meth:`note_file` where they open a file, so
    ``files_read`` holds every file the result came from (``source.files`` in the JSON), shards and
    external data once they are opened.
    """

    path: str = ""
    format: str = ""

    def __init__(self) -> None:
        self.layers: list[LayerInfo] = []
        self.metadata: dict = {}
        self.bytes_read = 0
        self.files_read: dict[str, str] = {}  # real path -> the path it was opened by
        self._named: str | None = None
        self._files_lock = threading.Lock()  # row readers open shards from worker threads

    def note_file(self, path: str) -> None:
        """Record that the reader opens ``path``; once :meth:`watch_named` was called, a file
        outside what the user named adds one warning to ``metadata["warnings"]`` (once per file)."""
        real = os.path.realpath(path)
        with self._files_lock:
            if real not in self.files_read:
                self.files_read[real] = path
                self._warn_outside(path, real)

    def watch_named(self, named: str) -> None:
        """Warn from now on, and for the files already read, about every file outside ``named``:
        the folder the user named or, for a file or checkpoint prefix, its folder (the link's or
        the real file's). Links are resolved (``gruinspect._paths.is_within``)."""
        with self._files_lock:
            self._named = named
            for real in sorted(self.files_read):
                self._warn_outside(self.files_read[real], real)

    def _warn_outside(self, path: str, real: str) -> None:
        named = self._named
        if named is None or real == os.path.realpath(named):
            return
        from ._paths import is_within

        folder = os.path.isdir(named)
        roots = [named] if folder else [os.path.dirname(named) or ".", os.path.dirname(os.path.realpath(named))]
        if any(is_within(root, real) for root in roots):
            return
        lexical = os.path.abspath(path)
        if any(lexical.startswith(os.path.join(os.path.abspath(root), "")) for root in roots):
            how = " (a symbolic link leads there)"
        elif folder and os.path.realpath(os.path.join(named, "checkpoint")) in self.files_read:
            how = " (its `checkpoint` state file points there)"
        else:
            how = ""
        where = "the folder named" if folder else "the folder of the file named"
        self.metadata.setdefault("warnings", []).append(f"{named}: read {real}, outside {where}{how}.")

    def infos(self) -> dict[str, TensorInfo]:
        """Every tensor's name, shape and dtype, in the file's order. Reads no tensor data."""
        raise NotImplementedError

    def read(self, name: str) -> np.ndarray:
        """The whole tensor ``name`` as a numpy array (checksum verified where the file has one)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files; the store must not be used afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_ITEMSIZE_OVERRIDES = {"bfloat16": 2, "string": 0}


def dtype_itemsize(dtype: str) -> int:
    if dtype in _ITEMSIZE_OVERRIDES:
        return _ITEMSIZE_OVERRIDES[dtype]
    import numpy as np

    return np.dtype(dtype).itemsize


def numpy_dtype(name: str) -> np.dtype:
    """numpy dtype for a dtype name, loading ml_dtypes only for bfloat16."""
    import numpy as np

    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    if name == "string":
        return np.dtype(object)
    return np.dtype(name)


def dtype_name(dtype: np.dtype) -> str:
    return "string" if dtype.kind == "O" else str(dtype)


class MemoryStore(TensorStore):
    """A store over in-memory arrays: run the layouts on weights you already hold.

    >>> import numpy as np
    >>> from gruinspect.layouts import find_cells
    >>> store = MemoryStore({"gru/gates/kernel": np.zeros((7, 8), np.float32),
    ...                      "gru/candidate/kernel": np.zeros((7, 4), np.float32)})
    >>> [(c.name, c.input_size, c.units) for c in find_cells(store).cells]
    [('gru', 3, 4)]
    """

    format = "memory"

    def __init__(self, tensors: dict, *, layers: list[LayerInfo] | None = None, path: str = "<memory>"):
        import numpy as np

        super().__init__()
        self.path = path
        self._tensors = {name: np.asarray(value) for name, value in tensors.items()}
        self.layers = list(layers or [])
        self._infos = {
            name: TensorInfo(name, tuple(a.shape), dtype_name(a.dtype)) for name, a in self._tensors.items()
        }

    def infos(self) -> dict[str, TensorInfo]:
        return self._infos

    def read(self, name: str) -> np.ndarray:
        value = self._tensors[name]
        self.bytes_read += value.nbytes
        return value.copy()
