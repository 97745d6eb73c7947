"""gruinspect: find every GRU cell in saved weights, name every block of it, prove it, convert it.

Library API (each command is a thin layer over one of these)::

    import gruinspect

    with gruinspect.load("model.ckpt") as model:        # any supported format
        cell = model.cells[0]
        cell.name, cell.layout, cell.input_size, cell.units, cell.reset_after, cell.activations
        cell.W_r, cell["update", "recurrent_kernel"]   # numpy blocks, read on first use
        h1 = cell.step(x, h0)                           # the cell's own equations, float64

    report = gruinspect.verify("model.ckpt")            # what `gruinspect verify` checks
    gruinspect.convert("model.h5", "onnx", "out/")      # what `gruinspect convert` writes

``list_cells``, ``open_cells`` and ``read_blocks`` are the older forms, kept as aliases.
Everything is imported on first use, so ``import gruinspect`` costs almost nothing.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["__version__", "load", "Model", "Cell", "verify", "convert", "diff", "list_cells", "open_cells",
           "read_blocks", "compute_stats", "split", "open_store", "find_cells"]

# name -> (module, attribute); imported on first access.
_LAZY = {
    "load": ("gruinspect.model", "load"),
    "Model": ("gruinspect.model", "Model"),
    "Cell": ("gruinspect.model", "Cell"),
    "list_cells": ("gruinspect.listing", "list_cells"),
    "open_cells": ("gruinspect.listing", "open_cells"),
    "read_blocks": ("gruinspect.blocks", "read_blocks"),
    "compute_stats": ("gruinspect.stats", "compute_stats"),
    "split": ("gruinspect.splitting", "split"),
    "open_store": ("gruinspect.formats", "open_store"),
    "find_cells": ("gruinspect.layouts", "find_cells"),
}
# Library functions that share their name with the package implementing them: the package is
# made callable, so `gruinspect.verify(path)` and `gruinspect.verify.verify_store(...)` both work
# however the package was first imported.
_CALLABLE_PACKAGES = ("verify", "convert", "diff")

if TYPE_CHECKING:
    from .blocks import read_blocks
    from .convert import convert
    from .diff import diff
    from .formats import open_store
    from .layouts import find_cells
    from .listing import list_cells, open_cells
    from .model import Cell, Model, load
    from .splitting import split
    from .stats import compute_stats
    from .verify import verify


class _CallableModule(types.ModuleType):
    """A package that, called, runs its function of the same name (``verify.verify``)."""

    def __call__(self, *args, **kwargs):
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # The import system binds each loaded submodule here: make the function packages callable.
        if name in _CALLABLE_PACKAGES and type(value) is types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    # Lazy so that `import gruinspect` (and `gruinspect --version`) costs almost nothing.
    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f"{__name__}.{name}")  # bound (and made callable) by _Package
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
