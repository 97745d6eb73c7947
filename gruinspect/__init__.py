"""gruinspect: find every GRU cell in a saved TensorFlow/Keras file and name every block of it.

Library API (the CLI is a thin layer over these)::

    from gruinspect import list_cells, open_cells, read_blocks
    inventory = list_cells("model.ckpt")
    with open_cells("model.ckpt") as (store, inv):
        blocks = read_blocks(store, inv.cells[0])   # {(gate, role): ndarray}
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "list_cells", "open_cells", "read_blocks", "compute_stats", "split", "open_store",
           "find_cells"]


def __getattr__(name):
    # Lazy so that `import gruinspect` (and `gruinspect --version`) costs almost nothing.
    if name in ("list_cells", "open_cells"):
        from . import inventory

        return getattr(inventory, name)
    if name == "read_blocks":
        from .blocks import read_blocks

        return read_blocks
    if name == "compute_stats":
        from .stats import compute_stats

        return compute_stats
    if name == "split":
        from .export import split

        return split
    if name == "open_store":
        from .formats import open_store

        return open_store
    if name == "find_cells":
        from .layouts import find_cells

        return find_cells
    raise AttributeError(name)
