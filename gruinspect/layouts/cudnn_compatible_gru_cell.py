"""contrib ``CudnnCompatibleGRUCell``: GRUCell gates, cuDNN-style candidate (docs/conventions.md).

Source: tensorflow `contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py`:

    [r | u] = sigmoid([x, h] @ gates/kernel + gates/bias)       # [I+H, 2H]; r columns first
    c = tanh(x @ input_projection/kernel + input_projection/bias
             + r * (h @ hidden_projection/kernel + hidden_projection/bias))
    h' = u * h + (1 - u) * c

The reset gate multiplies after the recurrent matmul (reset_after=True). ``gates/bias`` holds the
cuDNN input and recurrent r/u biases already summed, so r and u have one bias each; the
candidate has both.
"""
from __future__ import annotations

from ..cell import GruCell, stacked_blocks, vector_blocks
from ._common import common_dtype, join, scopes_with, shape_problem, tf_gate_blocks, weights
from .spec import ConventionRow, LayoutSpec, Oracle, Ref

LAYOUT = "tf-cudnn-compatible-gru-cell"

LEAVES = {
    "gates/kernel": "gates/kernel", "gates/bias": "gates/bias",
    "candidate/input_projection/kernel": "candidate/input_projection/kernel",
    "candidate/input_projection/bias": "candidate/input_projection/bias",
    "candidate/hidden_projection/kernel": "candidate/hidden_projection/kernel",
    "candidate/hidden_projection/bias": "candidate/hidden_projection/bias",
}
WHAT = "CudnnCompatibleGRUCell"


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    infos = weights(store, claimed)
    cells = []
    for scope in scopes_with(infos, LEAVES["candidate/input_projection/kernel"]):
        found = {role: infos.get(join(scope, leaf)) for role, leaf in LEAVES.items()}
        missing = [role for role, info in found.items() if info is None]
        if missing:
            problems.append(f"{scope} looks like a {WHAT} but lacks {', '.join(missing)}")
            continue
        cell = _build(scope, found, problems)
        if cell is not None:
            cells.append(cell)
    return cells


def _build(scope: str, found: dict, problems: list[str]) -> GruCell | None:
    ci = found["candidate/input_projection/kernel"]
    if len(ci.shape) != 2:
        problems.append(f"{scope} looks like a {WHAT} but {ci.name} is not a matrix")
        return None
    input_size, units = ci.shape
    expected = {
        "gates/kernel": (input_size + units, 2 * units), "gates/bias": (2 * units,),
        "candidate/input_projection/bias": (units,), "candidate/hidden_projection/kernel": (units, units),
        "candidate/hidden_projection/bias": (units,),
    }
    problem = shape_problem(scope, WHAT, found, expected)
    dtype, dtype_problem = common_dtype(scope, found)
    if problem or dtype_problem:
        problems.append(problem or dtype_problem)
        return None
    blocks = tf_gate_blocks(found["gates/kernel"].name, found["gates/bias"].name, input_size, units)
    blocks += stacked_blocks(ci.name, gates=("candidate",), units=units, rows=[("input_kernel", 0, input_size)])
    blocks += stacked_blocks(found["candidate/hidden_projection/kernel"].name, gates=("candidate",), units=units,
                             rows=[("recurrent_kernel", 0, units)])
    blocks += vector_blocks(found["candidate/input_projection/bias"].name, gates=("candidate",), units=units, role="bias")
    blocks += vector_blocks(found["candidate/hidden_projection/bias"].name, gates=("candidate",), units=units,
                            role="recurrent_bias")
    return GruCell(
        name=scope, layout=LAYOUT, input_size=input_size, units=units, reset_after=True, dtype=dtype,
        tensors={role: info.name for role, info in found.items()},
        shapes={info.name: tuple(info.shape) for info in found.values()},
        blocks=blocks,
        config_source="layout default (cuDNN GRU: sigmoid and tanh)",
        notes=["gates/bias holds cuDNN's input and recurrent reset/update biases already summed"],
    )


def equations(cell, t, xs, h0, acts):
    """CudnnCompatibleGRUCell's equations on its six fused tensors."""
    from ..maths.tf1 import cudnn_compatible_gru_cell

    return cudnn_compatible_gru_cell(
        *(t[k] for k in ("gates/kernel", "gates/bias", "candidate/input_projection/kernel",
                         "candidate/input_projection/bias", "candidate/hidden_projection/kernel",
                         "candidate/hidden_projection/bias")),
        xs, h0, activation_name=acts.activation, recurrent_activation_name=acts.recurrent_activation)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="contrib CudnnCompatibleGRUCell",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="tensorflow 1.x contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py CudnnCompatibleGRUCell.call",
    # No installable TensorFlow has tf.contrib: the "framework" check applies the cell's equations
    # and the report says so (gruinspect.oracle.tf1.cudnn_compatible_oracle).
    oracle=Oracle(Ref("gruinspect.oracle.tf1:cudnn_compatible_oracle"), needs=()),
    conventions=(ConventionRow(True, "sigmoid", "tanh", "summed", "contrib CudnnCompatibleGRUCell"),),
    samples=("cudnn_compatible",),
)
