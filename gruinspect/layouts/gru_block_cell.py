"""contrib ``GRUBlockCell`` (V1 names ``w_ru``, ``b_ru``, ``w_c``, ``b_c``; docs/conventions.md).

Source: tensorflow `contrib/rnn/python/ops/gru_ops.py`. The maths is GRUCell's (r columns, then
u; reset before the candidate matmul). GRUBlockCellV2 uses GRUCell's names and is found by
:mod:`.tf_gru_cell`. One release created ``w_c`` with the [I+H, 2H] gate shape and ``w_ru`` with
the [I+H, H] candidate shape, so the kernels are told apart by shape, not by name.
"""
from __future__ import annotations

from ..cell import GruCell
from ._common import join, scopes_with, weights
from .tf_gru_cell import build
from .spec import ConventionRow, LayoutSpec, Oracle, Ref

LAYOUT = "tf-gru-block-cell"


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    infos = weights(store, claimed)
    cells = []
    for scope in scopes_with(infos, "w_ru"):
        named = {leaf: infos.get(join(scope, leaf)) for leaf in ("w_ru", "b_ru", "w_c", "b_c")}
        if named["w_c"] is None:
            continue
        w_ru, w_c = named["w_ru"], named["w_c"]
        swapped = len(w_ru.shape) == 2 and len(w_c.shape) == 2 and w_c.shape[-1] > w_ru.shape[-1]
        if swapped:
            w_ru, w_c = w_c, w_ru
        found = {"gates/kernel": w_ru, "candidate/kernel": w_c}
        if named["b_ru"] is not None:
            found["gates/bias"] = named["b_ru"]
        if named["b_c"] is not None:
            found["candidate/bias"] = named["b_c"]
        cell = build(scope, "GRUBlockCell", found, problems, layout=LAYOUT, what="GRUBlockCell")
        if cell is None:
            continue
        cell.config = {"naming": "GRUBlockCell (w_c/w_ru swapped)" if swapped else "GRUBlockCell"}
        if swapped:
            cell.notes.append(f"{named['w_c'].name} holds the gate kernel and {named['w_ru'].name} the "
                              "candidate kernel (names swapped, as one contrib release wrote them)")
        cells.append(cell)
    return cells


SPEC = LayoutSpec(
    name=LAYOUT,
    title="contrib GRUBlockCell",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref("gruinspect.layouts.tf_gru_cell:equations"),
    equations_source="tensorflow core/kernels/rnn/gru_ops.h (GRUBlockCell computes GRUCell's equations)",
    oracle=Oracle(Ref("gruinspect.oracle.tf1:gru_block_cell_oracle"), needs=("tensorflow",)),
    conventions=(ConventionRow(False, "sigmoid", "tanh", "one", "GRUBlockCell"),),
    samples=("gru_block_cell", "gru_block_cell_swapped"),
)
