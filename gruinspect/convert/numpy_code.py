"""``gru_numpy.py``: each cell's own equations as a dependency-free numpy module, weights in ``.npz``.

Written: ``gru_numpy.py`` (numpy and the standard library only) and one ``<cell>.npz`` per cell
holding its blocks by the README's short names (``W_r``, ``U_z``, ``b_h``, ``b_hn``...) in
``x @ W`` orientation: ``W_*`` [input_size, units], ``U_*`` [units, units], biases [units]. A bias
the source does not store is not in the archive. The module's ``step(x, h)`` and ``run(xs, h0)``
compute in float64 with the cell's convention (reset before or after the matmul, its biases, its
activations), generated per cell so each one reads as its equations.

Proof: the written module is imported from the output folder and run on the proof's sequences.
"""
from __future__ import annotations

import os

import numpy as np

from .. import __version__
from ._code import (LOSSLESS, capabilities, cell_symbols, clip_of, consumption_order, import_written,
                    present_blocks, short_name)
from ._common import CellRun, Finding, Layer, MappedLayer

NAME = "numpy"
EXTRA = None
MODULE = "gru_numpy.py"
CLIPS = True  # writes the ONNX clip bound on the activations' inputs

CAPS = capabilities(NAME, "the numpy step", written_dtype={"bfloat16": "float32"},
                    dtype_notes={"bfloat16": LOSSLESS["bfloat16"]})

# Each activation as numpy source, matching gruinspect.maths.ACTIVATIONS.
PY_ACTIVATIONS = {
    "sigmoid": "def sigmoid(v):\n    with np.errstate(over=\"ignore\"):\n        return 1.0 / (1.0 + np.exp(-v))",
    "tanh": "tanh = np.tanh",
    "hard_sigmoid_keras2": "def hard_sigmoid_keras2(v):\n    \"\"\"Keras 1/2 and tf.keras hard_sigmoid.\"\"\"\n"
                           "    return np.clip(0.2 * v + 0.5, 0.0, 1.0)",
    "hard_sigmoid_keras3": "def hard_sigmoid_keras3(v):\n    \"\"\"Keras 3 hard_sigmoid: relu6(x + 3) / 6.\"\"\"\n"
                           "    return np.clip(v / 6.0 + 0.5, 0.0, 1.0)",
    "relu": "def relu(v):\n    return np.maximum(v, 0.0)",
    "linear": "def linear(v):\n    return v",
    "softsign": "def softsign(v):\n    return v / (1.0 + np.abs(v))",
    "softplus": "def softplus(v):\n    return np.logaddexp(0.0, v)",
    "elu": "def elu(v):\n    return np.where(v > 0, v, np.expm1(np.minimum(v, 0.0)))",
    "selu": "def selu(v):\n    return 1.0507009873554805 * np.where(v > 0, v, 1.6732632423543772 * "
            "np.expm1(np.minimum(v, 0.0)))",
    "swish": "def swish(v):\n    with np.errstate(over=\"ignore\"):\n        return v / (1.0 + np.exp(-v))",
    "silu": "def silu(v):\n    with np.errstate(over=\"ignore\"):\n        return v / (1.0 + np.exp(-v))",
    "gelu": "_erf = np.vectorize(math.erf, otypes=[np.float64])\n\n\ndef gelu(v):\n"
            "    \"\"\"The exact erf form (Keras' default).\"\"\"\n    return 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)))",
    "exponential": "exponential = np.exp",
}

_API = '''

def names():
    """The cells in this module, in the order they were written."""
    return list(CELLS)


def weights(name=None):
    """The named cell's blocks as float64 arrays by short name (W_r, U_z, b_h...)."""
    name = _pick(name)
    if name not in _WEIGHTS:
        with np.load(os.path.join(HERE, CELLS[name]["file"])) as archive:
            _WEIGHTS[name] = {key: archive[key].astype(np.float64) for key in archive.files}
    return _WEIGHTS[name]


def step(x, h, name=None):
    """One step of the cell: x [batch, input_size] (or [input_size]), h [batch, units] -> the next h."""
    name = _pick(name)
    return CELLS[name]["step"](weights(name), np.asarray(x, dtype=np.float64), np.asarray(h, dtype=np.float64))


def run(xs, h0=None, name=None):
    """Every state over xs [T, batch, input_size] (or [T, input_size]) from h0 (zeros by default),
    in the order given: a backward cell's sequence is passed to it last input first."""
    name = _pick(name)
    xs = np.asarray(xs, dtype=np.float64)
    h = np.zeros(xs.shape[1:-1] + (CELLS[name]["units"],)) if h0 is None else np.asarray(h0, dtype=np.float64)
    out = []
    for x in xs:
        h = step(x, h, name)
        out.append(h)
    return np.stack(out)


def _pick(name):
    if name is None:
        if len(CELLS) != 1:
            raise ValueError(f"this module holds {len(CELLS)} cells; pass name= one of {list(CELLS)}")
        return next(iter(CELLS))
    if name not in CELLS:
        raise KeyError(f"no cell {name!r}; the cells are {list(CELLS)}")
    return name


_WEIGHTS = {}
'''


def check_dependencies() -> None:
    """Writing needs numpy only."""


def layer_notes(layer: Layer) -> list[Finding]:
    if layer.reverse:
        return [Finding("feed reversed", "run() has no direction: the source read its sequence backwards, so pass "
                                         "it the sequence reversed")]
    return []


def _step_source(symbol: str, mc, present: set) -> list[str]:
    def w(key):
        return f'w["{short_name(*key)}"]'

    def terms(*keys_or_text):
        out = []
        for item in keys_or_text:
            if isinstance(item, str):
                out.append(item)
            elif item in present:
                out.append(w(item))
        return " + ".join(out)

    clip = clip_of(mc)

    def call(name, value):  # ONNX clip bounds every activation's input
        return f"{name}(np.clip({value}, -{clip!r}, {clip!r}))" if clip else f"{name}({value})"

    act_r, act = mc.plan.recurrent_activation, mc.plan.activation
    reset = "reset after the matmul" if mc.plan.reset_after else "reset before the matmul"
    doc = f"{mc.cell.name} ({mc.cell.layout}): {reset}, {act_r} / {act}" + (f", clip {clip:g}." if clip else ".")
    lines = [f"def _step_{symbol}(w, x, h):", f"    {doc!r}"]
    for gate, var in (("reset", "r"), ("update", "z")):
        lines.append(f"    {var} = " + call(act_r, terms(f"x @ {w((gate, 'input_kernel'))}", (gate, "bias"),
                                                       f"h @ {w((gate, 'recurrent_kernel'))}", (gate, "recurrent_bias"))))
    U_h = w(("candidate", "recurrent_kernel"))
    if mc.plan.reset_after:
        inner = terms(f"h @ {U_h}", ("candidate", "recurrent_bias"))
        lines.append("    c = " + call(act, terms(f"x @ {w(('candidate', 'input_kernel'))}", ("candidate", "bias"))
                                       + f" + r * ({inner})"))
    else:
        lines.append("    c = " + call(act, terms(f"x @ {w(('candidate', 'input_kernel'))}", ("candidate", "bias"),
                                                  f"(r * h) @ {U_h}", ("candidate", "recurrent_bias"))))
    lines.append("    return z * h + (1.0 - z) * c")
    return lines


def write(layers: list[MappedLayer], folder: str) -> list[dict]:
    symbols = cell_symbols(layers, "")
    used: list[str] = []
    steps: list[str] = []
    cells_src = ["CELLS = {"]
    records = []
    for ml in layers:
        for mc in ml.cells:
            symbol = symbols[id(mc.cell)]
            present = present_blocks(mc)
            arrays = {short_name(g, r): np.ascontiguousarray(mc.blocks[(g, r)], dtype=ml.dtype) for g, r in present}
            file = f"{symbol}.npz"
            np.savez(os.path.join(folder, file), **arrays)
            records.append({"file": file, "cells": [mc.cell.name], "arrays": list(arrays), "dtype": ml.dtype})
            for name in (mc.plan.recurrent_activation, mc.plan.activation):
                if name not in used:
                    used.append(name)
            steps += _step_source(symbol, mc, set(present)) + ["", ""]
            config = {"file": file, "input_size": mc.cell.input_size, "units": mc.cell.units,
                      "reset_after": mc.plan.reset_after, "recurrent_activation": mc.plan.recurrent_activation,
                      "activation": mc.plan.activation, "direction": mc.direction}
            body = ", ".join(f"{k!r}: {v!r}" for k, v in config.items())
            cells_src.append(f"    {mc.cell.name!r}: {{{body}, 'step': _step_{symbol}}},")
            mc.written_as = {"file": MODULE, "weights": file, "name": mc.cell.name,
                             "summary": f"{MODULE}: run(xs, h0, name={mc.cell.name!r}); {file}"}
    cells_src.append("}")
    doc = [f'"""GRU cells as numpy code (written by gruinspect {__version__}, gruinspect convert --to numpy).',
           "",
           "Each cell's weights are in the .npz beside this file by short name, in x @ W orientation:",
           "W_* [input_size, units], U_* [units, units], b_* (input side) and b_h* (recurrent side) [units].",
           "",
           "    import gru_numpy",
           "    hs = gru_numpy.run(xs, h0, name=gru_numpy.names()[0])   # xs [T, batch, input_size]",
           "    h = gru_numpy.step(x, h, name=...)                      # one step",
           '"""'] + (["import math"] if "gelu" in used else []) + ["import os", "", "import numpy as np", "",
           "HERE = os.path.dirname(os.path.abspath(__file__))", "", ""]
    acts = []
    for name in used:
        acts += [PY_ACTIVATIONS[name], "", ""]
    text = "\n".join(doc + acts + steps + cells_src) + "\n" + _API
    with open(os.path.join(folder, MODULE), "w", encoding="utf-8") as f:
        f.write(text)
    records.append({"file": MODULE, "cells": [mc.cell.name for ml in layers for mc in ml.cells], "role": "module"})
    return records


def implementation() -> tuple[str, str | None]:
    return f"the written {MODULE} (numpy {np.__version__})", None


def run(folder: str, ml: MappedLayer, xs: np.ndarray, h0s: list[np.ndarray]) -> list[CellRun]:
    module = import_written(folder, MODULE)
    name, _ = implementation()
    runs = []
    for (mc, seq, backward), h0 in zip(consumption_order(ml, xs), h0s):
        outputs = module.run(seq, h0, name=mc.cell.name)
        runs.append(CellRun(np.asarray(outputs, dtype=np.float64), backward, "float64", name))
    return runs
