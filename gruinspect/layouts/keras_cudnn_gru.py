"""Keras 2 ``CuDNNGRU`` (tf.keras ``tf.compat.v1.keras.layers.CuDNNGRU``, Keras 2.0.9-2.3.1).

docs/conventions.md (Keras 2 CuDNNGRU). Sources: tf_keras `src/layers/rnn/cudnn_gru.py` (``_process_batch`` feeds each
gate block to cuDNN flattened in C order, untransposed) and `src/saving/legacy/hdf5_format.py`
(``_convert_rnn_weights``, the CuDNNGRU -> GRU(reset_after=True) converter):

    kernel            [I, 3H]   gate k block B = kernel[:, k*H:(k+1)*H]; Keras-layout K_g = B.reshape(H, I).T
    recurrent_kernel  [H, 3H]   U_g = recurrent_kernel[:, k*H:(k+1)*H].T
    bias              [6H]      [0:3H] input biases z, r, h; [3H:6H] recurrent biases z, r, h

Gate order k = 0 update (z), 1 reset (r), 2 candidate (h), as in Keras' GRU. The math is Keras
GRU with reset_after=True, sigmoid and tanh (cuDNN's GRU; the layer has no activation options).
"""
from __future__ import annotations

from ..cell import Block, BlockSource, GruCell, vector_blocks
from ._common import common_dtype
from .spec import ConventionRow, LayoutSpec, Oracle, Ref
from ._keras import CUDNN_LAYOUT, KERAS_GATES, Candidate, cell_config, config_units, find_cells_by, gru_shapes

LAYOUT = CUDNN_LAYOUT


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    return find_cells_by(LAYOUT, build, store, claimed, problems)


def build(cand: Candidate, store, problems: list[str]) -> GruCell | None:
    fit = gru_shapes(cand.tensors)
    if fit is None or fit[2] != "cudnn":
        shapes = ", ".join(f"{role} {list(info.shape)}" for role, info in cand.tensors.items())
        problems.append(f"{cand.name} looks like a Keras CuDNNGRU but its weights have shapes {shapes}, not "
                        f"kernel [input_size, 3 * units], recurrent_kernel [units, 3 * units] and bias [6 * units]")
        return None
    input_size, units, _ = fit
    want_units = config_units(cand.config) if cand.has_config else None
    if want_units is not None and want_units != units:
        problems.append(f"{cand.name} is a Keras CuDNNGRU with units={want_units} in its config but its "
                        f"recurrent kernel is [{units}, {3 * units}]")
        return None
    dtype, dtype_problem = common_dtype(cand.name, cand.tensors)
    if dtype_problem:
        problems.append(dtype_problem)
        return None
    kernel = cand.tensors["kernel"].name
    recurrent = cand.tensors["recurrent_kernel"].name
    bias = cand.tensors["bias"].name
    blocks = []
    for k, gate in enumerate(KERAS_GATES):
        cols = (k * units, (k + 1) * units)
        blocks.append(Block(gate, "input_kernel", (input_size, units),
                            BlockSource(kernel, ((0, input_size), cols), "cudnn_kernel")))
        blocks.append(Block(gate, "recurrent_kernel", (units, units),
                            BlockSource(recurrent, ((0, units), cols), "cudnn_kernel")))
    blocks += vector_blocks(bias, gates=KERAS_GATES, units=units, role="bias")
    for block in vector_blocks(bias, gates=KERAS_GATES, units=units, role="recurrent_bias"):
        (start, stop), = block.source.index
        blocks.append(Block(block.gate, block.role, block.shape,
                            BlockSource(bias, ((3 * units + start, 3 * units + stop),))))
    return GruCell(
        name=cand.name, layout=LAYOUT, input_size=input_size, units=units, reset_after=True, dtype=dtype,
        tensors={role: info.name for role, info in cand.tensors.items()},
        shapes={info.name: tuple(info.shape) for info in cand.tensors.values()},
        blocks=blocks, activation="tanh", recurrent_activation="sigmoid",
        config_source="layout default (CuDNNGRU is always sigmoid and tanh)",
        config=cell_config(cand, use_bias=True, reset_after_source="CuDNNGRU"),
        notes=["kernel blocks are stored in cuDNN order: each gate block is block.reshape(units, rows).T "
               "(tf_keras _convert_rnn_weights)"],
    )


def keras_tensors(cell, t):
    """(kernel [I, 3H], recurrent_kernel [H, 3H], bias [2, 3H]) in Keras GRU(reset_after=True) form: each
    flattened kernel block is read by cuDNN as [H, I] row-major, recurrent blocks are transposed, and
    the bias is input biases then recurrent biases (tf_keras hdf5_format._convert_rnn_weights)."""
    import numpy as np

    H, I = cell.units, cell.input_size
    K, U, b = t["kernel"], t["recurrent_kernel"], t["bias"]
    K = np.concatenate([K[:, g * H:(g + 1) * H].reshape(H, I).T for g in range(3)], axis=1)
    U = np.concatenate([U[:, g * H:(g + 1) * H].T for g in range(3)], axis=1)
    return K, U, b.reshape(2, 3 * H)


def equations(cell, t, xs, h0, acts):
    """Keras GRU(reset_after=True) equations on the CuDNNGRU tensors in Keras form."""
    from ..maths.keras import gru

    return gru(*keras_tensors(cell, t), xs, h0, reset_after=True, activation_name=acts.activation,
               recurrent_activation_name=acts.recurrent_activation)


def _cudnn_kernel(a, block):
    rows, units = block.shape
    return a.reshape(units, rows).T


def _cudnn_kernel_inverse(b, stored_shape):
    import numpy as np

    return np.ascontiguousarray(b.T).reshape(stored_shape)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="Keras 2 CuDNNGRU",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="tf_keras src/layers/rnn/cudnn_gru.py and src/saving/legacy/hdf5_format.py _convert_rnn_weights",
    oracle=Oracle(Ref("gruinspect.oracle.keras:cudnn_gru_oracle"), needs=("tensorflow", "tf_keras")),
    conventions=(ConventionRow(True, "sigmoid", "tanh", "two", "CuDNNGRU"),),
    samples=("tfkeras_cudnn_gru",),
    transforms={"cudnn_kernel": (Ref(f"{__name__}:_cudnn_kernel"), Ref(f"{__name__}:_cudnn_kernel_inverse"))},
)
