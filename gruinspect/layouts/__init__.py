"""One module per GRU convention, each declaring ``SPEC`` (:class:`~gruinspect.layouts.spec.LayoutSpec`).

Modules are tried in :data:`LAYOUTS` order; a tensor claimed by one cell is never offered to the
next, and a module that sees GRU-like names with shapes that do not fit explains why in
``problems`` instead of guessing. Adding a convention is one module plus one line here.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from typing import NamedTuple

from ..cell import GruCell
from ..errors import UnsupportedError
from .spec import Activations, LayoutSpec

# Most specific first: a CudnnCompatibleGRUCell also has GRUCell-like `gates/*` tensors.
LAYOUTS: list[str] = ["cudnn_compatible_gru_cell", "tf_gru_cell", "gru_block_cell", "keras_cudnn_gru", "keras1_gru",
                      "keras_gru", "pytorch_gru", "onnx_gru", "onnx_loop_gru", "tflite_sequence_gru", "tflite_gru"]


class Discovery(NamedTuple):
    """What :func:`find_cells` found: the cells, and sentences on GRU-like tensors that did not fit."""

    cells: list[GruCell]
    problems: list[str]


def specs() -> list[LayoutSpec]:
    """Every registered convention's spec, in :data:`LAYOUTS` order."""
    return [importlib.import_module(f"{__name__}.{name}").SPEC for name in LAYOUTS]


@lru_cache(maxsize=None)
def _by_name() -> dict[str, LayoutSpec]:
    return {spec.name: spec for spec in specs()}


def spec_for(layout: str) -> LayoutSpec:
    """The spec of a layout name (``cell.layout``); :class:`UnsupportedError` for an unknown one."""
    try:
        return _by_name()[layout]
    except KeyError:
        raise UnsupportedError(f"Unsupported layout {layout!r}; known: {', '.join(_by_name())}.") from None


def activations_of(cell: GruCell) -> tuple[Activations, bool]:
    """``(activations, assumed)``: the cell's own activations, else (``assumed``) its layout's
    defaults for whichever the file does not record."""
    if cell.activation is not None and cell.recurrent_activation is not None:
        return Activations(cell.activation, cell.recurrent_activation), False
    default = spec_for(cell.layout).default_activations
    return Activations(cell.activation or default.activation,
                       cell.recurrent_activation or default.recurrent_activation), True


def transform(name: str):
    """``(stored slice -> block, block -> stored slice)`` functions of a block transform name."""
    for spec in specs():
        if name in spec.transforms:
            forward, inverse = spec.transforms[name]
            return forward.resolve(), inverse.resolve()
    raise UnsupportedError(f"Unsupported block transform {name!r}.")


def find_cells(store) -> Discovery:
    """Every GRU cell in ``store``, in the order the layouts find them, plus sentences on GRU-like tensors that did not fit."""
    claimed: set[str] = set()
    problems: list[str] = []
    cells: list[GruCell] = []
    for spec in specs():
        found = spec.find_cells(store, claimed, problems)
        for cell in found:
            claimed.update(cell.tensors.values())
        cells += found
    return Discovery(cells, problems)
