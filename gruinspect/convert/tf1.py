"""TF1 ``tf.nn.rnn_cell.GRUCell``: fused [x; h] kernels, gate columns r | u (docs/conventions.md).

Source: tensorflow ``python/ops/rnn_cell_impl.py`` (now tf_keras ``layers/rnn/legacy_cells.py``),
``GRUCell.call``::

    [r | u] = sigmoid([x, h] @ gates/kernel + gates/bias)        # [I+H, 2H], [2H]
    c = act([x, r * h] @ candidate/kernel + candidate/bias)       # [I+H, H], [H]
    h' = u * h + (1 - u) * c

gates/kernel = [[W_r, W_u], [U_r, U_u]], gates/bias = [b_r, b_u], candidate/kernel = [W_c; U_c],
candidate/bias = b_c. The reset gate multiplies h before the candidate matmul, the gates are
always sigmoid, and the biases always exist; the candidate activation is a constructor argument
(``GRUCell(units, activation=...)``) that checkpoints do not record.

Written: ``model.npz`` with ``<cell>/gates/kernel``, ``<cell>/gates/bias``,
``<cell>/candidate/kernel``, ``<cell>/candidate/bias`` (GRUCell's variable names under the
source cell's name).
"""
from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np

from ._common import Activation, Capabilities, CellRun, Finding, Layer, MappedLayer, cat

NAME = "tf1"
EXTRA = None
ROLES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")

# Candidate activations GRUCell can be built with, and the TF function to pass.
_TF_FUNCTIONS = {
    "relu": "tf.nn.relu", "linear": "tf.identity", "softsign": "tf.nn.softsign", "softplus": "tf.nn.softplus",
    "elu": "tf.nn.elu", "selu": "tf.nn.selu", "swish": "tf.nn.silu", "silu": "tf.nn.silu", "exponential": "tf.exp",
}
_CANDIDATE = {"tanh": Activation("tanh")}
_CANDIDATE.update({
    name: Activation(fn, Finding(f"activation={fn}",
                                 f"build the cell as GRUCell(units, activation={fn}): checkpoints do not record it"))
    for name, fn in _TF_FUNCTIONS.items()
})

CAPS = Capabilities(
    target=NAME,
    label="TF1 GRUCell",
    reset_after=(False,),
    gate_activations={"sigmoid": Activation("sigmoid")},
    candidate_activations=_CANDIDATE,
    recurrent_bias={True: False, False: False},
    optional_bias=False,
    written_dtype={"bfloat16": "float32"},
    dtype_notes={"bfloat16": Finding("bfloat16 as float32", "bfloat16 weights are written as float32 (lossless)")},
)


def check_dependencies() -> None:
    """Writing needs numpy only."""


def layer_notes(layer: Layer) -> list[Finding]:
    if layer.reverse:
        return [Finding("feed reversed",
                        "GRUCell has no direction: the source read its sequence backwards, so feed this cell the "
                        "sequence reversed")]
    return []


def fused(blocks: dict, dtype: str) -> dict[str, np.ndarray]:
    """GRUCell's four variables from canonical blocks."""
    gates = np.concatenate([
        np.concatenate([blocks[("reset", "input_kernel")], blocks[("update", "input_kernel")]], axis=1),
        np.concatenate([blocks[("reset", "recurrent_kernel")], blocks[("update", "recurrent_kernel")]], axis=1),
    ], axis=0)
    candidate = np.concatenate([blocks[("candidate", "input_kernel")], blocks[("candidate", "recurrent_kernel")]], 0)
    values = {"gates/kernel": gates, "gates/bias": cat(blocks, ("reset", "update"), "bias"),
              "candidate/kernel": candidate, "candidate/bias": blocks[("candidate", "bias")]}
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in values.items()}


def write(layers: list[MappedLayer], folder: str) -> list[dict]:
    arrays: dict[str, np.ndarray] = {}
    for ml in layers:
        for mc in ml.cells:
            names = []
            for role, value in fused(mc.blocks, ml.dtype).items():
                names.append(f"{mc.cell.name}/{role}")
                arrays[names[-1]] = value
            mc.written_as = {"file": "model.npz", "arrays": names,
                             "summary": f"model.npz: {mc.cell.name}/gates/*, candidate/*"}
            if mc.plan.activation != "tanh":
                mc.written_as["activation"] = _TF_FUNCTIONS[mc.plan.activation]
    np.savez(os.path.join(folder, "model.npz"), **arrays)
    return [{"file": "model.npz", "cells": [mc.cell.name for ml in layers for mc in ml.cells]}]


def implementation(activation: str = "tanh") -> tuple[str, str | None]:
    if activation != "tanh":
        return ("numpy transcription of the GRUCell equations",
                "the TF1 oracle builds GRUCell with its default tanh only")
    # TF >= 2.16 keeps tf.compat.v1.nn.rnn_cell.GRUCell in tf_keras.
    if all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_keras")):
        return "tf.compat.v1.nn.rnn_cell.GRUCell (gruinspect.oracle.tf1)", None
    return "numpy transcription of the GRUCell equations", "TensorFlow (with tf_keras) is not installed"


def run(folder: str, ml: MappedLayer, xs: np.ndarray, h0s: list[np.ndarray]) -> list[CellRun]:
    compute = "float64" if ml.dtype == "float64" else "float32"
    runs = []
    with np.load(os.path.join(folder, "model.npz")) as npz:
        for mc, h0 in zip(ml.cells, h0s):
            values = [npz[n].astype(compute) for n in mc.written_as["arrays"]]
            name, fallback = implementation(mc.plan.activation)
            if fallback is None:
                from ..oracle.tf1 import run_tf_gru_cell

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # GRUCell's deprecation notice
                    out = run_tf_gru_cell(*values, xs.astype(compute), h0.astype(compute))
            else:
                out = _run_numpy(values, xs.astype(compute), h0.astype(compute), mc.plan.activation)
            runs.append(CellRun(np.asarray(out, dtype=np.float64), False, compute, name, fallback))
    return runs


def _run_numpy(values, xs, h0, activation):
    from ..maths.tf1 import gru_cell

    return gru_cell(*values, xs, h0, activation_name=activation)
