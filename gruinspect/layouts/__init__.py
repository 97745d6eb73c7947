"""One module per GRU convention, each with ``find_cells(store, claimed, problems)``.

Modules are tried in order; a tensor claimed by one cell is never offered to the next, and a
module that sees GRU-like names with shapes that do not fit explains why in ``problems`` instead
of guessing.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from ..cell import GruCell

# Most specific first: a CudnnCompatibleGRUCell also has GRUCell-like `gates/*` tensors.
LAYOUTS: list[str] = ["cudnn_compatible_gru_cell", "tf_gru_cell", "gru_block_cell", "keras_cudnn_gru", "keras1_gru",
                     "keras_gru"]


@dataclass
class Discovery:
    cells: list[GruCell]
    problems: list[str] = field(default_factory=list)


def find_cells(store) -> Discovery:
    """Every GRU cell in ``store``, in the order the layouts find them, plus sentences on GRU-like tensors that did not fit."""
    claimed: set[str] = set()
    problems: list[str] = []
    cells: list[GruCell] = []
    for name in LAYOUTS:
        module = importlib.import_module(f"{__name__}.{name}")
        found = module.find_cells(store, claimed, problems)
        for cell in found:
            claimed.update(cell.tensors.values())
        cells += found
    return Discovery(cells, problems)
