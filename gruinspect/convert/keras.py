"""Keras 3 ``keras.layers.GRU``: gate order z, r, h (docs/conventions.md).

Source: keras-team/keras ``keras/src/layers/rnn/gru.py`` (``GRUCell.call``)::

    kernel [I, 3H] = concat([W_z, W_r, W_h], 1); recurrent_kernel [H, 3H] likewise
    reset_after=False: bias [3H] = [b_z, b_r, b_h];   h~ = act(x W_h + b_h + (r * h) U_h)
    reset_after=True:  bias [2, 3H], row 0 input, row 1 recurrent;
                       h~ = act(x W_h + bi_h + r * (h U_h + br_h))
    h' = z * h + (1 - z) * h~

Both reset conventions exist, so the target GRU gets the source's ``reset_after``. Activation names
are Keras 3's: ``hard_sigmoid`` there is clip(x/6 + 0.5); Keras 2's clip(0.2x + 0.5) equals Keras 3's
hard_sigmoid of 1.2x, so those gates' kernels and biases are scaled by 1.2. Keras 3's ``gelu`` is
the exact (erf) form, not the tanh approximation, so it is not offered.

Written: ``model.npz`` with ``<cell>/kernel``, ``<cell>/recurrent_kernel`` and ``<cell>/bias`` (no
bias when the source has none: ``use_bias=False``), and ``load_keras.py``, which builds each GRU
(a pair as ``Bidirectional``) and loads it with ``set_weights``.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from ._common import Activation, Capabilities, CellRun, Finding, Layer, MappedLayer, cat

NAME = "keras"
EXTRA = None
ORDER = ("update", "reset", "candidate")

# canonical -> Keras 3 name (checked against keras.activations in the tests)
KERAS_NAMES = {
    "sigmoid": "sigmoid", "tanh": "tanh", "hard_sigmoid_keras3": "hard_sigmoid", "relu": "relu",
    "linear": "linear", "softsign": "softsign", "softplus": "softplus", "elu": "elu", "selu": "selu",
    "swish": "swish", "silu": "silu", "exponential": "exponential",
}
_ACTIVATIONS = {canonical: Activation(name) for canonical, name in KERAS_NAMES.items()}

CAPS = Capabilities(
    target=NAME,
    label="Keras 3 GRU",
    reset_after=(True, False),
    gate_activations=_ACTIVATIONS,
    candidate_activations=_ACTIVATIONS,
    recurrent_bias={True: True, False: False},
    optional_bias=True,
    equivalents={"hard_sigmoid_keras2": ("hard_sigmoid_keras3", 1.2)},
    written_dtype={"bfloat16": "float32"},
    dtype_notes={"bfloat16": Finding("bfloat16 as float32", "bfloat16 weights are written as float32 (lossless)")},
)


def check_dependencies() -> None:
    """Writing needs numpy only."""


def layer_notes(layer: Layer) -> list[Finding]:
    return []


def _config(mc, ml: MappedLayer, go_backwards: bool) -> dict:
    config = {"activation": KERAS_NAMES[mc.plan.activation],
              "recurrent_activation": KERAS_NAMES[mc.plan.recurrent_activation],
              "reset_after": mc.plan.reset_after, "use_bias": mc.plan.use_bias}
    if go_backwards:
        config["go_backwards"] = True
    if ml.dtype == "float64":
        config["dtype"] = "float64"
    return config


def write(layers: list[MappedLayer], folder: str) -> list[dict]:
    arrays: dict[str, np.ndarray] = {}
    snippet = [
        '"""Build Keras 3 GRU layers and load the converted weights (written by gruinspect convert)."""',
        "import os", "", "import keras", "import numpy as np", "",
        "HERE = os.path.dirname(os.path.abspath(__file__))",
        'weights = np.load(os.path.join(HERE, "model.npz"))', "", "",
        "def gru(units, **config):",
        "    return keras.layers.GRU(units, return_sequences=True, **config)", "", "",
        "def load(layer, input_size, names):",
        "    layer.build((None, None, input_size))",
        "    layer.set_weights([weights[n] for n in names])",
        "    return layer", "", "",
        "layers = {}",
    ]
    for ml in layers:
        built = []
        all_names = []
        for mc in ml.cells:
            prefix = mc.cell.name
            names = [f"{prefix}/kernel", f"{prefix}/recurrent_kernel"]
            arrays[names[0]] = cat(mc.blocks, ORDER, "input_kernel")
            arrays[names[1]] = cat(mc.blocks, ORDER, "recurrent_kernel")
            if mc.plan.use_bias:
                names.append(f"{prefix}/bias")
                bias = cat(mc.blocks, ORDER, "bias")
                if mc.plan.reset_after:
                    bias = np.stack([bias, cat(mc.blocks, ORDER, "recurrent_bias")])
                arrays[names[2]] = bias
            for n in names:
                arrays[n] = np.ascontiguousarray(arrays[n], dtype=ml.dtype)
            go_backwards = mc.direction == "backward"
            config = _config(mc, ml, go_backwards)
            mc.written_as = {"file": "model.npz", "arrays": names, "keras.layers.GRU": {"units": ml.layer.units, **config},
                             "summary": f"model.npz: {prefix}/" + ", ".join(n.rsplit("/", 1)[1] for n in names)}
            built.append(f"gru({ml.layer.units}, {', '.join(f'{k}={v!r}' for k, v in config.items())})")
            all_names += names
        key = " + ".join(mc.cell.name for mc in ml.cells)
        if ml.layer.bidirectional:
            layer_expr = f"keras.layers.Bidirectional({built[0]}, backward_layer={built[1]})"
        else:
            layer_expr = built[0]
        snippet.append(f"layers[{key!r}] = load({layer_expr}, {ml.layer.input_size}, {all_names!r})")
    np.savez(os.path.join(folder, "model.npz"), **arrays)
    snippet.append("")
    with open(os.path.join(folder, "load_keras.py"), "w", encoding="utf-8") as f:
        f.write("\n".join(snippet))
    return [{"file": "model.npz", "cells": [mc.cell.name for ml in layers for mc in ml.cells]},
            {"file": "load_keras.py", "cells": [], "role": "loader"}]


def implementation() -> tuple[str, str | None]:
    if importlib.util.find_spec("keras") is not None:
        try:
            keras = _import_keras()
        except ImportError as exc:  # e.g. no backend installed
            return "numpy transcription of the Keras GRU equations", f"keras cannot be imported ({exc})"
        return f"keras.layers.GRU (Keras {keras.__version__}, {keras.backend.backend()} backend)", None
    return "numpy transcription of the Keras GRU equations", "keras is not installed"


def _import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras


def run(folder: str, ml: MappedLayer, xs: np.ndarray, h0s: list[np.ndarray]) -> list[CellRun]:
    name, fallback = implementation()
    compute = "float64" if ml.dtype == "float64" else "float32"
    with np.load(os.path.join(folder, "model.npz")) as npz:
        weights = {n: npz[n] for mc in ml.cells for n in mc.written_as["arrays"]}
    runs = []
    for mc, h0 in zip(ml.cells, h0s):
        config = dict(mc.written_as["keras.layers.GRU"])
        arrays = [weights[n] for n in mc.written_as["arrays"]]
        if fallback is None:
            out = _run_keras(config, arrays, ml.layer.input_size, xs, h0, compute)
        else:
            out = _run_numpy(config, arrays, xs, h0, compute)
        # go_backwards keeps the output in reversed (consumption) order.
        runs.append(CellRun(out, bool(config.get("go_backwards")), compute, name, fallback))
    return runs


def _run_keras(config, arrays, input_size, xs, h0, compute):
    keras = _import_keras()
    config = dict(config)
    units = config.pop("units")
    config["dtype"] = compute
    layer = keras.layers.GRU(units, return_sequences=True, **config)
    layer.build((None, None, input_size))
    layer.set_weights(arrays)
    batch_major = np.ascontiguousarray(np.swapaxes(xs, 0, 1), dtype=compute)
    out = layer(batch_major, initial_state=[h0.astype(compute)])
    return np.swapaxes(keras.ops.convert_to_numpy(out), 0, 1).astype(np.float64)


def _run_numpy(config, arrays, xs, h0, compute):
    """Keras GRUCell's equations (Keras 3 names: this target writes Keras 3) on the arrays read back."""
    from ..maths.activations import from_keras
    from ..maths.keras import gru

    K, U = (a.astype(compute) for a in arrays[:2])
    bias = arrays[2].astype(compute) if config["use_bias"] else None
    seq = xs[::-1] if config.get("go_backwards") else xs
    out = gru(K, U, bias, seq.astype(compute), h0.astype(compute), reset_after=config["reset_after"],
              activation_name=from_keras(config["activation"], "keras3"),
              recurrent_activation_name=from_keras(config["recurrent_activation"], "keras3"))
    return out.astype(np.float64)
