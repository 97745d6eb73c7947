"""Keras 1 ``GRU`` saved as nine per-gate arrays (``consume_less='cpu'`` or ``'mem'``).

docs/conventions.md (Keras 1 GRU). Source: keras 1.2 `keras/layers/recurrent.py` ``GRU.build`` creates, in this
order, ``W_z, U_z, b_z, W_r, U_r, b_r, W_h, U_h, b_h`` named ``<layer>_W_z`` etc. (``:0`` with the
TensorFlow backend); ``GRU.step``:

    z = inner_activation(x W_z + b_z + h U_z)
    r = inner_activation(x W_r + b_r + h U_r)
    h~ = activation(x W_h + b_h + (r * h) U_h)          # reset before the matmul
    h' = z * h + (1 - z) * h~

``inner_activation`` defaults to hard_sigmoid (Keras 1/2's clip(0.2x + 0.5)). Each array is one
block as stored. tf_keras' loader concatenates them into kernel = [W_z | W_r | W_h], etc.
(`hdf5_format.py` ``_convert_rnn_weights`` for Keras 1). The ``consume_less='gpu'`` variant saved
three concatenated arrays and is read by the ``keras-gru`` layout.
"""
from __future__ import annotations

from ..cell import Block, BlockSource, GruCell
from ._common import common_dtype
from .spec import Activations, ConventionRow, LayoutSpec, Oracle, Ref
from ._keras import KERAS1_LAYOUT, Candidate, cell_config, config_units, describe_config, find_cells_by

LAYOUT = KERAS1_LAYOUT
_GATES = {"z": "update", "r": "reset", "h": "candidate"}
_ROLES = {"W": "input_kernel", "U": "recurrent_kernel", "b": "bias"}


def find_cells(store, claimed: set[str], problems: list[str]) -> list[GruCell]:
    return find_cells_by(LAYOUT, build, store, claimed, problems)


def build(cand: Candidate, store, problems: list[str]) -> GruCell | None:
    t = cand.tensors
    w_z = t["W_z"]
    if len(w_z.shape) != 2 or min(w_z.shape) <= 0:
        problems.append(f"{cand.name} looks like a Keras 1 GRU but W_z {w_z.name} has shape {list(w_z.shape)}")
        return None
    input_size, units = w_z.shape
    expected = {"W": (input_size, units), "U": (units, units), "b": (units,)}
    for role, info in t.items():
        want = expected[role[0]]
        if tuple(info.shape) != want:
            problems.append(f"{cand.name} looks like a Keras 1 GRU but {role} {info.name} has shape "
                            f"{list(info.shape)}, where {list(want)} was expected")
            return None
    want_units = config_units(cand.config) if cand.has_config else None
    if want_units is not None and want_units != units:
        problems.append(f"{cand.name} is a Keras 1 GRU with output_dim={want_units} in its config but W_z is "
                        f"{list(w_z.shape)}")
        return None
    dtype, dtype_problem = common_dtype(cand.name, t)
    if dtype_problem:
        problems.append(dtype_problem)
        return None
    blocks = []
    for role, info in t.items():
        kind, gate = role.split("_")
        index = tuple((0, n) for n in info.shape)
        blocks.append(Block(_GATES[gate], _ROLES[kind], tuple(info.shape), BlockSource(info.name, index)))
    config = dict(cand.config)
    config.setdefault("keras_generation", "keras1")
    cand = Candidate(cand.name, cand.layout, cand.tensors, cand.class_name or "GRU", config, cand.has_config,
                     cand.from_layer)
    activation, recurrent_activation, config_source = describe_config(cand, store)
    return GruCell(
        name=cand.name, layout=LAYOUT, input_size=input_size, units=units, reset_after=False, dtype=dtype,
        tensors={role: info.name for role, info in t.items()},
        shapes={info.name: tuple(info.shape) for info in t.values()},
        blocks=blocks, activation=activation, recurrent_activation=recurrent_activation,
        config_source=config_source,
        config=cell_config(cand, use_bias=True, reset_after_source="Keras 1 GRU"),
    )


def equations(cell, t, xs, h0, acts):
    """Keras GRU(reset_after=False) equations on the nine arrays joined as tf-keras's loader joins them."""
    import numpy as np

    from ..maths.keras import gru

    K = np.concatenate([t["W_z"], t["W_r"], t["W_h"]], axis=-1)
    U = np.concatenate([t["U_z"], t["U_r"], t["U_h"]], axis=-1)
    b = np.concatenate([t["b_z"], t["b_r"], t["b_h"]]) if "b_z" in t else None
    return gru(K, U, b, xs, h0, reset_after=False, activation_name=acts.activation,
               recurrent_activation_name=acts.recurrent_activation)


SPEC = LayoutSpec(
    name=LAYOUT,
    title="Keras 1 GRU (nine per-gate arrays)",
    find_cells=Ref(f"{__name__}:find_cells"),
    equations=Ref(f"{__name__}:equations"),
    equations_source="keras 1.2 keras/layers/recurrent.py GRU.step",
    oracle=Oracle(Ref("gruinspect.oracle.keras:keras1_gru_oracle"), needs=("tensorflow", "tf_keras")),
    default_activations=Activations("tanh", "hard_sigmoid_keras2"),
    conventions=(ConventionRow(False, "hard_sigmoid_keras2", "tanh", "one",
                               "Keras 1 and Keras 2.0-2.2.5 GRU defaults; tf.keras GRU v1 in TF 1.x"),),
    samples=("keras1_gru",),
)
