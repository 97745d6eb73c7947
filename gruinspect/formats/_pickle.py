"""A restricted unpickler for PyTorch files: builds inert stand-ins, never runs code from the file.

A pickle is a small program: ``GLOBAL`` names any importable callable and ``REDUCE`` calls it, so a
plain ``pickle.load`` of a downloaded checkpoint can run anything. This unpickler imports nothing.
:meth:`RestrictedUnpickler.find_class` maps

* the few names a state_dict needs (torch's tensor and parameter rebuild functions in
  ``torch/_utils.py``, storage and dtype names, ``collections.OrderedDict``, plain containers) to
  local stand-ins (``_ALLOWED``) whose "call" only records its arguments;
* every other global to a stand-in class that is never imported. A whole pickled model
  (``torch.save(model)``) is made of such classes (``__main__.MyNet``, ``torch.nn.modules.rnn.GRU``)
  built with ``NEWOBJ`` and filled by ``BUILD``: the stand-in records the state and nothing else.
  Calling one (``REDUCE``, ``INST``, ``OBJ``: ``os.system``, ``builtins.exec``, a class used as a
  function) raises :class:`UnsafePickleError` before anything runs.

Storages come back through ``persistent_load`` as :class:`StorageRef` records; the reader decides
where their bytes are. Tensors are :class:`TensorRef` records (storage, offset, size, stride).
"""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field

from ..errors import InvalidFileError, UnsupportedError


class UnsafePickleError(UnsupportedError):
    """The pickle asks to call a function gruinspect does not allow (``args[0]`` names it)."""


class _Bad(Exception):
    """A malformed record in the pickle; :meth:`RestrictedUnpickler.load_safely` names the file."""


# torch storage class names (torch/storage.py, `_LegacyStorage` subclasses) -> dtype names.
STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}
# torch dtype attribute names -> dtype names (pickled as GLOBAL torch.<name>, e.g. in metadata).
TORCH_DTYPES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64", "float16": "float16",
    "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
    "complex64": "complex64", "complex128": "complex128",
}


@dataclass(frozen=True)
class StorageType:
    """What ``GLOBAL torch.FloatStorage`` (or a torch dtype) stands for: a dtype name."""

    dtype: str


@dataclass(eq=False)
class StorageRef:
    """A storage named by a persistent id: ``('storage', type, key, location, numel[, view])``."""

    key: str
    dtype: str
    numel: int
    location: str
    view: tuple | None = None  # legacy files: (root key, offset in elements, numel) of a view

    def __setstate__(self, state):  # BUILD on a storage: torch never writes one
        raise _Bad("it modifies a storage record")


@dataclass(eq=False)
class TensorRef:
    """A tensor as ``torch._utils._rebuild_tensor_v2`` would build it: a strided view of a storage."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    parameter: bool = False

    def __setstate__(self, state):  # BUILD on a plain tensor: torch never writes one
        raise _Bad("it modifies a tensor record")


@dataclass(eq=False)
class Opaque:
    """A value gruinspect keeps no contents of (a numpy array in a checkpoint, a path, a device)."""

    what: str
    args: tuple = ()
    state: object = None

    def __setstate__(self, state) -> None:
        self.state = state


class StandIn:
    """An instance of a class named by the file, never imported: it only records its state.

    ``_gi_class`` is the class's dotted name, ``_gi_args`` the ``NEWOBJ`` arguments, ``_gi_state``
    what ``BUILD`` gave, ``_gi_items`` / ``_gi_list`` what ``SETITEMS`` / ``APPENDS`` added
    (subclasses of dict and list).
    """

    _gi_class = "?"

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        object.__setattr__(self, "_gi_args", args)
        object.__setattr__(self, "_gi_state", None)
        object.__setattr__(self, "_gi_items", {})
        object.__setattr__(self, "_gi_list", [])
        return self

    def __setstate__(self, state) -> None:
        object.__setattr__(self, "_gi_state", state)

    def __setitem__(self, key, value) -> None:
        if not isinstance(key, (str, int, float, bool, type(None), tuple)):
            key = repr(type(key).__name__)
        self._gi_items[key] = value

    def append(self, value) -> None:
        self._gi_list.append(value)

    def extend(self, values) -> None:
        self._gi_list.extend(values)

    def __setattr__(self, name, value) -> None:  # BUILD's slot state: recorded, never applied
        self._gi_items[f"@{name}"] = value

    def __call__(self, *args, **kwargs):
        raise UnsafePickleError(self._gi_class + " (an object built from the file)")

    def state_dict(self) -> dict:
        """The recorded attributes, whatever form the file gave them in."""
        state = self._gi_state
        out: dict = {}
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            out.update(state[0] or {})
            if isinstance(state[1], dict):
                out.update(state[1])
        elif isinstance(state, dict):
            out.update(state)
        elif state is not None:
            out["__state__"] = state
        out.update(self._gi_items)
        if self._gi_list:
            out["__items__"] = list(self._gi_list)
        return out


class _RefusingClass(type):
    """Metaclass of the stand-in classes: calling the class (REDUCE, INST, OBJ) is refused."""

    def __call__(cls, *args, **kwargs):
        raise UnsafePickleError(cls._gi_class)


class _Allowed:
    """A local stand-in for one allowed callable: calling it builds an inert record."""

    __slots__ = ("name", "fn")

    def __init__(self, name: str, fn) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args, **kwargs):
        try:
            return self.fn(*args, **kwargs)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            raise _Bad(f"bad arguments to {self.name} ({exc})") from None

    def __setattr__(self, name, value):
        raise _Bad(f"it modifies {self.name}")

    def __setstate__(self, state):
        raise _Bad(f"it modifies {self.name}")


def _ints(value, what: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise _Bad(f"tensor {what} {value!r:.80} is not a tuple of integers")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    # torch/_utils.py `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
    # backward_hooks, metadata=None)` and the older `_rebuild_tensor(storage, offset, size, stride)`.
    if not isinstance(storage, StorageRef):
        raise _Bad(f"a tensor is rebuilt from {type(storage).__name__}, not a storage")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise _Bad(f"tensor storage offset {storage_offset!r:.40}")
    shape, strides = _ints(size, "size"), _ints(stride, "stride")
    if len(shape) != len(strides) or any(d < 0 for d in shape) or any(s < 0 for s in strides):
        raise _Bad(f"tensor size {list(shape)} and stride {list(strides)} do not fit")
    return TensorRef(storage, storage_offset, shape, strides)


def _rebuild_parameter(data, *rest):
    # torch/_utils.py `_rebuild_parameter(data, requires_grad, backward_hooks)` and
    # `_rebuild_parameter_with_state(data, requires_grad, backward_hooks, state)`.
    if isinstance(data, TensorRef):
        data.parameter = True
    return data


def _rebuild_from_type_v2(func, new_type, args, state=None):
    # torch/_tensor.py: `ret = func(*args)`, then the subclass and its state are applied.
    if not isinstance(func, _Allowed) or func.name not in _TENSOR_BUILDERS:
        raise UnsafePickleError(getattr(func, "name", None) or getattr(func, "_gi_class", repr(type(func).__name__)))
    return func(*args)


_OBJECT = ("builtins.object", "__builtin__.object")


def _reconstructor(cls, base=None, state=None):
    # copyreg._reconstructor(cls, base, state) is `base.__new__(cls, state)` and, unless base is
    # object, `base.__init__(obj, state)`: only the plain-object form builds an inert stand-in.
    if not isinstance(cls, _RefusingClass):
        raise UnsafePickleError(f"copyreg._reconstructor on {getattr(cls, 'name', type(cls).__name__)}")
    if base is not None and getattr(base, "_gi_class", None) not in _OBJECT:
        raise UnsafePickleError(getattr(base, "_gi_class", None) or getattr(base, "name", None) or type(base).__name__)
    return cls.__new__(cls)


def _codecs_encode(text, encoding="utf-8", *rest):
    # Protocol 2 pickles bytes as `_codecs.encode(latin-1 text, 'latin1')`.
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower().replace("-", "") not in (
            "latin1", "utf8", "ascii"):
        raise _Bad("bad arguments to _codecs.encode")
    return text.encode(encoding)


class _OrderedDict(dict):
    """``collections.OrderedDict``: a state_dict's ``BUILD`` gives it ``_metadata``, kept apart."""

    def __setstate__(self, state) -> None:
        self.__dict__["_gi_state"] = state


def _ordered_dict(*args):
    if len(args) > 1:
        raise _Bad("OrderedDict takes one argument")
    return _OrderedDict(*args)


def _first(value, *rest):
    # torch/jit/_pickle.py restore_type_tag(value, type_str) and build_*list(data): the value itself.
    return value


def _opaque(what: str):
    return lambda *args, **kwargs: Opaque(what, args)


def _container(kind):
    def build(*args):
        if len(args) > 1:
            raise _Bad(f"{kind.__name__} takes one argument")
        return kind(*args)
    return build


_TENSOR_BUILDERS = {"torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor"}

_ALLOWED = {
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
    "collections.OrderedDict": _ordered_dict,
    "torch.jit._pickle.restore_type_tag": _first,
    "torch.jit._pickle.build_intlist": _first, "torch.jit._pickle.build_tensorlist": _first,
    "torch.jit._pickle.build_doublelist": _first, "torch.jit._pickle.build_boollist": _first,
    "builtins.set": _container(set), "__builtin__.set": _container(set),
    "builtins.frozenset": _container(frozenset), "__builtin__.frozenset": _container(frozenset),
    "builtins.bytearray": _opaque("bytearray"), "__builtin__.bytearray": _opaque("bytearray"),
    "builtins.complex": _opaque("complex"), "__builtin__.complex": _opaque("complex"),
    "builtins.slice": _opaque("slice"), "__builtin__.slice": _opaque("slice"),
    "_codecs.encode": _codecs_encode,
    "copyreg._reconstructor": _reconstructor, "copy_reg._reconstructor": _reconstructor,
    "torch.Size": lambda dims=(): _ints(dims, "size"),
    "torch.device": _opaque("torch.device"),
    "torch.serialization._get_layout": _opaque("torch layout"),
    "numpy.core.multiarray._reconstruct": _opaque("numpy array"),
    "numpy._core.multiarray._reconstruct": _opaque("numpy array"),
    "numpy.core.multiarray.scalar": _opaque("numpy scalar"),
    "numpy._core.multiarray.scalar": _opaque("numpy scalar"),
    "numpy.dtype": _opaque("numpy dtype"),
    "pathlib.PosixPath": _opaque("path"), "pathlib.WindowsPath": _opaque("path"), "pathlib.Path": _opaque("path"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickle ``data`` into containers, stand-ins and :class:`TensorRef` records.

    ``storages`` holds every storage the file named, by key.
    """

    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8")
        self.where = where
        self.storages: dict[str, StorageRef] = {}
        self.classes: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        dotted = f"{module}.{name}"
        if dotted in _ALLOWED:
            return _Allowed(dotted, _ALLOWED[dotted])
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name])
        if module == "torch" and name in TORCH_DTYPES:
            return StorageType(TORCH_DTYPES[name])
        cls = self.classes.get(dotted)
        if cls is None:
            cls = _RefusingClass(name if name.isidentifier() else "StandIn", (StandIn,), {"_gi_class": dotted})
            self.classes[dotted] = cls
        return cls

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise InvalidFileError(f"Invalid PyTorch file {self.where}: unknown persistent id {pid!r:.80}")
        _, kind, key, location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(kind, StorageType):
            raise UnsupportedError(f"Unsupported PyTorch file {self.where}: storage type {kind!r:.60}")
        if not isinstance(key, (str, int)) or not isinstance(numel, int) or numel < 0:
            raise InvalidFileError(f"Invalid PyTorch file {self.where}: bad storage record {pid!r:.80}")
        key = str(key)
        ref = self.storages.get(key)
        if ref is None:
            ref = self.storages[key] = StorageRef(key, kind.dtype, numel, str(location))
        if view is None:
            return ref
        # torch < 1.6 wrote views of a storage as (view key, element offset, numel) (_legacy_save)
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[1], int) and isinstance(view[2], int)
                and view[1] >= 0 and view[2] >= 0):
            raise InvalidFileError(f"Invalid PyTorch file {self.where}: bad storage view {view!r:.80}")
        view_key = f"{key}@{view[0]}"
        if view_key not in self.storages:
            self.storages[view_key] = StorageRef(view_key, kind.dtype, view[2], str(location), (key, view[1]))
        return self.storages[view_key]

    def load_safely(self):
        """The unpickled object, or a one-line error (never a traceback from a hostile file)."""
        try:
            return self.load()
        except UnsafePickleError as exc:
            raise UnsupportedError(f"Unsupported pickle in {self.where}: it asks to call {exc.args[0]}, and "
                                   f"gruinspect never executes code from a file.") from None
        except _Bad as exc:
            raise InvalidFileError(f"Invalid pickle in {self.where}: {exc}.") from None
        except (UnsupportedError, InvalidFileError):
            raise
        except RecursionError:
            raise UnsupportedError(f"Unsupported pickle in {self.where}: it nests too deeply") from None
        except MemoryError:
            raise InvalidFileError(f"Invalid pickle in {self.where}: it claims more memory than it holds.") from None
        except (EOFError, pickle.UnpicklingError) as exc:
            raise InvalidFileError(f"Invalid pickle in {self.where}: {exc or 'it ends early'}.") from None
        except Exception as exc:  # a malformed opcode stream: bad stack, bad memo index, wrong types
            raise InvalidFileError(f"Invalid pickle in {self.where}: {type(exc).__name__}: {str(exc)[:200]}.") from None


@dataclass
class Found:
    """What :func:`collect` found in an unpickled object: tensors by dotted path, and modules."""

    tensors: dict[str, TensorRef] = field(default_factory=dict)
    modules: list[tuple[str, str, dict]] = field(default_factory=list)  # (path, class, scalar attributes)
    classes: set[str] = field(default_factory=set)


MAX_DEPTH = 200
_MODULE_KEYS = ("_parameters", "_buffers", "_modules")


def collect(root, where: str) -> Found:
    """Every tensor reachable from ``root``, named as ``state_dict()`` names it.

    Dict keys and attribute names join with ``.``, list items by index; a module's
    ``_parameters``, ``_buffers`` and ``_modules`` add no name of their own (so a pickled model's
    names equal its state_dict keys). A tensor reached twice keeps its first name.
    """
    found = Found()
    seen: set[int] = set()
    stack = [("", root, 0)]
    while stack:
        path, obj, depth = stack.pop()
        if isinstance(obj, TensorRef):
            if id(obj) not in seen and path:
                seen.add(id(obj))
                found.tensors.setdefault(path, obj)
            continue
        if not isinstance(obj, (dict, list, tuple, set, frozenset, StandIn)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        if depth > MAX_DEPTH:
            raise UnsupportedError(f"Unsupported pickle in {where}: objects nest more than {MAX_DEPTH} levels deep.")
        children: list[tuple[str, object]] = []
        if isinstance(obj, StandIn):
            found.classes.add(obj._gi_class)
            state = obj.state_dict()
            if any(k in state for k in _MODULE_KEYS):
                found.modules.append((path, obj._gi_class, {k: v for k, v in state.items() if not k.startswith("_")
                                                            and isinstance(v, (int, float, str, bool, type(None)))}))
                for key in _MODULE_KEYS:
                    part = state.get(key)
                    if isinstance(part, (dict, StandIn)):
                        items = part.state_dict() if isinstance(part, StandIn) else part
                        children += [(_join(path, k), v) for k, v in items.items()]
                children += [(_join(path, k), v) for k, v in state.items() if k not in _MODULE_KEYS]
            else:
                children += [(_join(path, k), v) for k, v in state.items()]
                children += [(_join(path, str(i)), v) for i, v in enumerate(obj._gi_args)]
        elif isinstance(obj, dict):
            children += [(_join(path, k), v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple)):
            children += [(_join(path, str(i)), v) for i, v in enumerate(obj)]
        # reversed onto the stack, so children are visited in the file's order
        stack.extend((p, v, depth + 1) for p, v in reversed(children))
    return found


def _join(path: str, key) -> str:
    key = key if isinstance(key, str) else repr(key) if not isinstance(key, int) else str(key)
    return f"{path}.{key}" if path else key
