"""`list`: which GRU cells a file holds, read from names and shapes only (no tensor data)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .cell import GruCell
from .formats import open_store
from .layouts import find_cells
from .layouts._common import is_optimizer_slot
from .store import TensorInfo, TensorStore


class Inventory:
    """What `list` found in PATH: its cells, the sentences on GRU-like tensors that did not fit
    (``problems``), every tensor's name, shape and dtype, and what the reader said of the file.

    ``files_read`` and ``reader_warnings`` are the store's own, still filling as it reads. A plain
    class, not a dataclass, for start-up time (gruinspect/store.py)."""

    def __init__(self, path: str, format: str, cells: list[GruCell], problems: list[str] | None = None,  # noqa: A002
                 tensors: list[TensorInfo] | None = None, metadata: dict | None = None,
                 files_read: dict | None = None, reader_warnings: list | None = None) -> None:
        self.path, self.format, self.cells = path, format, cells
        self.problems: list[str] = [] if problems is None else problems
        self.tensors: list[TensorInfo] = [] if tensors is None else tensors
        self.metadata: dict = {} if metadata is None else metadata
        self.files_read: dict = {} if files_read is None else files_read
        self.reader_warnings: list = [] if reader_warnings is None else reader_warnings

    def __repr__(self) -> str:
        return f"Inventory(path={self.path!r}, format={self.format!r}, cells={[c.name for c in self.cells]})"

    @property
    def source(self) -> dict:
        """``path`` and ``format``, and ``files``: every file read so far (real paths, sorted)."""
        return {"path": self.path, "format": self.format, "files": sorted(self.files_read)}

    def problems_now(self) -> list[str]:
        """``problems`` and the reader warnings added since, about files opened later (shards,
        external data read by ``stats``, ``split`` or ``verify``)."""
        return self.problems + [w for w in self.reader_warnings if w not in self.problems]

    def other_tensors(self) -> list[TensorInfo]:
        """Tensors that belong to no cell, optimizer state included (marked in JSON)."""
        used = {t for c in self.cells for t in c.tensors.values()}
        return [t for t in self.tensors if t.name not in used]

    def to_json(self, *, all_tensors: bool = False) -> dict:
        out = {"source": self.source, "cells": [c.summary() for c in self.cells], "problems": self.problems}
        if all_tensors:
            out["tensors"] = [
                {"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                 "cell": self.cell_of(t.name), "optimizer_slot": is_optimizer_slot(t.name)}
                for t in self.tensors
            ]
        return out

    def cell_of(self, tensor: str) -> str | None:
        for c in self.cells:
            if tensor in c.tensors.values():
                return c.name
        return None


def inventory_of(path: str, store: TensorStore) -> Inventory:
    """The cells of an open store (PATH is what the user named), from names and shapes only."""
    discovery = find_cells(store)
    warnings = store.metadata.setdefault("warnings", [])
    return Inventory(
        path=path, format=store.format, cells=discovery.cells, reader_warnings=warnings,
        problems=[*warnings, *discovery.problems],
        tensors=list(store.infos().values()), metadata=dict(store.metadata), files_read=store.files_read,
    )


@contextmanager
def open_cells(path: str) -> Iterator[tuple[TensorStore, Inventory]]:
    """Open PATH and find its cells: ``with open_cells(p) as (store, inventory): ...``.

    The older form of :func:`gruinspect.load`, kept for existing code."""
    store: TensorStore = open_store(path)
    try:
        yield store, inventory_of(path, store)
    finally:
        store.close()


def list_cells(path: str) -> Inventory:
    """Every GRU cell in PATH with its layout, sizes and dtype; reads no tensor data.

    >>> inv = list_cells("sample_checkpoints/tf1_gru_single/model.ckpt")  # doctest: +SKIP
    >>> [(c.name, c.layout, c.input_size, c.units) for c in inv.cells]     # doctest: +SKIP
    [('rnn/gru_cell', 'tf-gru-cell', 3, 4)]
    """
    with open_cells(path) as (_, inventory):
        return inventory
