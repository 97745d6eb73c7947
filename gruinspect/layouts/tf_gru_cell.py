"""TF1 ``tf.nn.rnn_cell.GRUCell`` in every naming era (docs/conventions.md).

Source: tensorflow `python/ops/rnn_cell_impl.py` (now tf_keras `layers/rnn/legacy_cells.py`),
``GRUCell.build`` / ``GRUCell.call``:

    gate_inputs = concat([x, h], 1) @ gates/kernel + gates/bias      # [I+H, 2H], [2H]
    r, u = split(sigmoid(gate_inputs), 2, axis=1)                     # r columns first
    c = tanh(concat([x, r * h], 1) @ candidate/kernel + candidate/bias)   # [I+H, H], [H]
    h' = u * h + (1 - u) * c

Rows 0..I of each kernel multiply x, rows I..I+H multiply h. The reset gate multiplies h before
the candidate matmul (reset_after=False). GRUCell stores no activation: tanh and sigmoid are the
defaults and a custom activation cannot be seen in the file.
"""
from __future__ import annotations

from ..cell import GruCell, stacked_blocks, vector_blocks
from ._common import common_dtype, join, scopes_with, shape_problem, tf_gate_blocks, weights
from .spec import ConventionRow, LayoutSpec, Oracle, Ref

LAYOUT = "tf-gru-cell"

# era -> canonical role -> leaf name under the cell scope
ERAS = {
    "tf>=1.3": {"gates/kernel": "gates/kernel", "gates/bias": "gates/bias",
                "candidate/kernel": "candidate/kernel", "candidate/bias": "candidate/bias"},
    "tf1.0-1.2": {"gates/kernel": "gates/weights", "gates/bias": "gates/biases",
                  "candidate/kernel": "candidate/weights", "candidate/bias": "candidate/biases"},
    "tf<=0.12": {"gates/kernel": "Gates/Linear/Matrix", "gates/bias": "Gates/Linear/Bias",
                 "candidate/kernel": "Candidate/Linear/Matrix", "candidate/bias": "Candidate/Linear/Bias"},
}


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    infos = weights(store, claimed)
    cells = []
    for era, leaves in ERAS.items():
        for scope in scopes_with(infos, leaves["gates/kernel"]):
            found = {role: infos.get(join(scope, leaf)) for role, leaf in leaves.items()}
            if found["candidate/kernel"] is None:
                continue
            cell = build(scope, era, {r: i for r, i in found.items() if i is not None}, problems)
            if cell is not None:
                cells.append(cell)
    return cells


def build(scope: str, era: str, found: dict, problems: list[str], *, layout: str = LAYOUT,
          what: str = "GRUCell") -> GruCell | None:
    """A GRUCell-maths cell from its four fused tensors (shared with GRUBlockCell)."""
    gk = found["gates/kernel"]
    if len(gk.shape) != 2 or gk.shape[1] % 2 or gk.shape[1] == 0:
        problems.append(f"{scope or '(root)'} looks like a {what} but its gate kernel {gk.name} has "
                        f"shape {list(gk.shape)}, not [input_size + units, 2 * units]")
        return None
    units = gk.shape[1] // 2
    input_size = gk.shape[0] - units
    expected = {"candidate/kernel": (input_size + units, units), "gates/bias": (2 * units,),
                "candidate/bias": (units,)}
    problem = shape_problem(scope, what, found, expected)
    if problem is None and input_size <= 0:
        problem = f"{scope or '(root)'} looks like a {what} but {gk.name} has too few rows for {units} units"
    if problem is None and ("gates/bias" in found) != ("candidate/bias" in found):
        problem = f"{scope or '(root)'} looks like a {what} but has only one of its two biases"
    dtype, dtype_problem = common_dtype(scope, found)
    if problem or dtype_problem:
        problems.append(problem or dtype_problem)
        return None
    gb = found.get("gates/bias")
    cb = found.get("candidate/bias")
    ck = found["candidate/kernel"].name
    blocks = tf_gate_blocks(gk.name, gb.name if gb else None, input_size, units)
    blocks += stacked_blocks(ck, gates=("candidate",), units=units,
                             rows=[("input_kernel", 0, input_size), ("recurrent_kernel", input_size, input_size + units)])
    if cb is not None:
        blocks += vector_blocks(cb.name, gates=("candidate",), units=units, role="bias")
    return GruCell(
        name=scope, layout=layout, input_size=input_size, units=units, reset_after=False, dtype=dtype,
        tensors={role: info.name for role, info in found.items()},
        shapes={info.name: tuple(info.shape) for info in found.values()},
        blocks=blocks,
        config_source="layout default (TF1 cells do not store activations)",
        config={"naming": era},
    )

def equations(cell, t, xs, h0, acts):
    """GRUCell's equations on the fused tensors (also GRUBlockCell's)."""
    from ..maths.tf1 import gru_cell

    return gru_cell(t["gates/kernel"], t.get("gates/bias"), t["candidate/kernel"], t.get("candidate/bias"), xs, h0,
                    activation_name=acts.activation, recurrent_activation_name=acts.recurrent_activation)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="TF1 tf.nn.rnn_cell.GRUCell",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="tensorflow python/ops/rnn_cell_impl.py GRUCell.call (tf_keras src/layers/rnn/legacy_cells.py)",
    oracle=Oracle(Ref("gruinspect.oracle.tf1:gru_cell_oracle"), needs=("tensorflow",)),
    conventions=(ConventionRow(False, "sigmoid", "tanh", "one", "TF1 GRUCell"),),
    samples=("tf1_gru_single", "tf1_multi_rnn", "tf1_bidirectional", "tf1_float16", "tf1_float64",
             "tf1_legacy_r012", "tf1_legacy_r10", "tf1_sharded", "tf1_partitioned"),
)
