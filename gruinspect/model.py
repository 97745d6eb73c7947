"""The library's front door: :func:`load` a file, then use its GRU cells as numpy objects.

    >>> import gruinspect
    >>> with gruinspect.load("sample_checkpoints/tf1_gru_single/model.ckpt") as model:  # doctest: +SKIP
    ...     cell = model.cells[0]
    ...     cell.W_r.shape, cell["update", "bias"].shape, cell.step(x, h).shape
    ((3, 4), (4,), (1, 4))

Blocks are read when first asked for and cached per cell; the file stays open until the model
is closed (``with`` closes it). Nothing here prints, exits or imports a framework.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .cell import CODE_NAMES, GATES, ROLES, GruCell
from .errors import GruInspectError
from .layouts.spec import Activations
from .store import TensorInfo, TensorStore

if TYPE_CHECKING:
    import numpy as np

    from .listing import Inventory

BlockKey = tuple[str, str]
_BY_CODE_NAME = {name: key for key, name in CODE_NAMES.items()}


class Cell:
    """One GRU cell of a :class:`Model`: its configuration and its blocks as numpy arrays.

    Blocks are canonical (``x @ W`` orientation): ``cell.block("reset", "input_kernel")``,
    ``cell["reset", "input_kernel"]`` and ``cell.W_r`` are the same [input_size, units] array.
    Short names are those of :data:`gruinspect.cell.CODE_NAMES`: ``W_*`` input kernels, ``U_*``
    recurrent kernels, ``b_*`` biases and ``b_h*`` recurrent biases, for gates ``r``, ``z``, ``h``.
    """

    def __init__(self, model: Model, info: GruCell) -> None:
        self._model = model
        self.info = info  # the layout's record: stored tensors, block sources, config, notes
        self._cache: dict[BlockKey, np.ndarray] = {}

    # -- configuration ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def layout(self) -> str:
        return self.info.layout

    @property
    def input_size(self) -> int:
        return self.info.input_size

    @property
    def units(self) -> int:
        return self.info.units

    @property
    def reset_after(self) -> bool:
        return self.info.reset_after

    @property
    def dtype(self) -> str:
        return self.info.dtype

    @property
    def activations(self) -> Activations:
        """The cell's activations: the file's own, else its layout's defaults (see
        :attr:`activations_assumed`)."""
        return self._activations()[0]

    @property
    def activations_assumed(self) -> bool:
        """True when the file does not record the activations and :attr:`activations` are the
        layout's defaults."""
        return self._activations()[1]

    def _activations(self) -> tuple[Activations, bool]:
        from .layouts import activations_of

        return activations_of(self.info)

    @property
    def keys(self) -> list[BlockKey]:
        """The ``(gate, role)`` pairs this cell has, in gate then role order."""
        return [(b.gate, b.role) for b in self.info.blocks]

    # -- blocks ----------------------------------------------------------------------------
    def block(self, gate: str, role: str) -> np.ndarray:
        """One block as a numpy array in the stored dtype (read on first use, then cached).

        Raises :class:`KeyError` naming the blocks the cell has when it has no such block
        (a cell without bias has no ``bias`` role; only some conventions have ``recurrent_bias``).
        """
        key = (gate, role)
        if key not in self._cache:
            if self.info.block(gate, role) is None:
                raise KeyError(self._missing(gate, role))
            self._read(key)
        return self._cache[key]

    def __getitem__(self, key: BlockKey) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise KeyError(f"Blocks are indexed by (gate, role), e.g. cell['reset', 'input_kernel']; got {key!r}.")
        return self.block(*key)

    def __getattr__(self, name: str) -> np.ndarray:
        key = _BY_CODE_NAME.get(name)
        if key is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        try:
            return self.block(*key)
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and self.info.block(*key) is not None

    def blocks(self) -> dict[BlockKey, np.ndarray]:
        """Every block ``{(gate, role): array}``, each stored tensor read once."""
        missing = [k for k in self.keys if k not in self._cache]
        if missing:
            self._read(*missing)
        return {k: self._cache[k] for k in self.keys}

    def _read(self, *keys: BlockKey) -> None:
        from .blocks import blocks_by_tensor, extract

        wanted = set(keys)
        store = self._model._open_store()
        for tensor, blocks in blocks_by_tensor(self.info).items():
            if not any((b.gate, b.role) in wanted for b in blocks):
                continue
            stored = store.read(tensor)
            for b in blocks:  # every block of a tensor read anyway: cache them all
                self._cache.setdefault((b.gate, b.role), extract(b, stored))

    def _missing(self, gate: str, role: str) -> str:
        if gate not in GATES or role not in ROLES:
            return (f"Unknown block ({gate!r}, {role!r}): gates are {', '.join(GATES)}; "
                    f"roles are {', '.join(ROLES)}.")
        have = ", ".join(CODE_NAMES[k] for k in self.keys)
        return f"Cell {self.name} ({self.layout}) has no {gate} {role} ({CODE_NAMES[(gate, role)]}); it has {have}."

    # -- maths -----------------------------------------------------------------------------
    def step(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """One step of this cell in float64 numpy: ``x`` [batch, input_size] (or [input_size]),
        ``h`` [batch, units]; returns the new state, same leading shape as ``x``."""
        import numpy as np

        from .maths import step

        x = np.asarray(x)
        out = step(self.blocks(), np.atleast_2d(x), np.atleast_2d(h), **self._maths_options())
        return out[0] if x.ndim == 1 else out

    def run(self, xs: np.ndarray, h0: np.ndarray | None = None) -> np.ndarray:
        """Every state of this cell over ``xs`` [T, batch, input_size] from ``h0`` [batch, units]
        (zeros when None), in float64: [T, batch, units]."""
        import numpy as np

        from .maths import run

        xs = np.asarray(xs)
        if h0 is None:
            h0 = np.zeros((xs.shape[1], self.units))
        return run(self.blocks(), xs, h0, **self._maths_options())

    def _maths_options(self) -> dict:
        acts = self.activations
        options = {"reset_after": self.reset_after, "activation_name": acts.activation,
                   "recurrent_activation_name": acts.recurrent_activation}
        clip = self.info.config.get("clip")  # ONNX GRU's bound on every activation's input
        if clip:
            options["clip"] = float(clip)
        return options

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {CODE_NAMES[k] for k in self.keys})

    def __repr__(self) -> str:
        acts = self.activations
        return (f"<Cell {self.name!r} {self.layout} input_size={self.input_size} units={self.units} "
                f"reset_after={self.reset_after} dtype={self.dtype} "
                f"activations={acts.recurrent_activation}/{acts.activation}>")


class Model:
    """The GRU cells of one file, with the file kept open for reading their blocks.

    ``cells`` in the order the layouts find them; ``problems`` are sentences about GRU-like
    tensors that fit no convention; ``tensors`` every stored tensor's name, shape and dtype;
    ``store`` the open :class:`~gruinspect.store.TensorStore`. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, path: str, store: TensorStore, inventory: Inventory) -> None:
        self.path = path
        self.store = store
        self.inventory = inventory
        self.cells: list[Cell] = [Cell(self, c) for c in inventory.cells]
        self._closed = False

    @property
    def format(self) -> str:
        return self.inventory.format

    @property
    def problems(self) -> list[str]:
        return self.inventory.problems

    @property
    def tensors(self) -> dict[str, TensorInfo]:
        return {t.name: t for t in self.inventory.tensors}

    @property
    def metadata(self) -> dict:
        return self.inventory.metadata

    def cell(self, name: str) -> Cell:
        """The cell called ``name``; :class:`KeyError` listing the cells otherwise."""
        for c in self.cells:
            if c.name == name:
                return c
        raise KeyError(f"No cell {name!r} in {self.path}; the cells are: {', '.join(c.name for c in self.cells) or 'none'}.")

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)

    def __len__(self) -> int:
        return len(self.cells)

    def _open_store(self) -> TensorStore:
        if self._closed:
            raise GruInspectError(f"The model {self.path} is closed; load it again to read its blocks.")
        return self.store

    def close(self) -> None:
        """Close the file; blocks already read stay usable."""
        if not self._closed:
            self._closed = True
            self.store.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<Model {self.path!r} [{self.format}] {len(self.cells)} GRU cell(s){state}>"


def load(path: str | os.PathLike[str]) -> Model:
    """Open PATH (any supported format, detected from its content) and find its GRU cells.

    Reads no tensor data until a block is asked for. Raises a
    :class:`~gruinspect.errors.GruInspectError` subclass, with a one-sentence message, for a file
    that cannot be read.
    """
    from .formats import open_store
    from .listing import inventory_of

    path = os.fspath(path)
    store = open_store(path)
    try:
        return Model(path, store, inventory_of(path, store))
    except BaseException:
        store.close()
        raise
