"""ONNX ``GRU`` (opset 14): gate order z, r, h (docs/conventions.md).

Source: onnx/onnx ``onnx/defs/rnn/defs.cc`` (GRU)::

    z = f(X W_z^T + H R_z^T + Wb_z + Rb_z)
    r = f(X W_r^T + H R_r^T + Wb_r + Rb_r)
    linear_before_reset = 0:  h~ = g(X W_h^T + (r * H) R_h^T + Rb_h + Wb_h)
    linear_before_reset = 1:  h~ = g(X W_h^T + r * (H R_h^T + Rb_h) + Wb_h)
    H' = (1 - z) * h~ + z * H

W [D, 3H, I] = concat([W_z, W_r, W_h], 1).T per direction, R [D, 3H, H] likewise, B [D, 6H] =
[Wb_zrh, Rb_zrh]; D = 2 for a forward/backward pair (forward first). ``reset_after`` maps to
``linear_before_reset``; activations are named per direction as [f, g], with ``activation_alpha`` /
``activation_beta`` consumed in order by the activations that take them (onnxruntime's rule).

Written: ``model.onnx``, one GRU node per layer (a cell, or a pair as one bidirectional node),
each with its own graph input ``X_l{k}`` [T, batch, I] and ``initial_h_l{k}`` [D, batch, H] and
outputs ``Y_l{k}`` [T, D, batch, H], ``Y_h_l{k}``. The nodes are not wired to each other: the
file holds the GRUs, not the rest of the model. onnxruntime's CPU GRU has no float64 kernel, so
float64 weights are written as float32.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np

from ..errors import MissingDependencyError
from ..layouts._onnx import TAKES
from ._common import Activation, Capabilities, CellRun, Finding, Layer, MappedLayer, cat

NAME = "onnx"
EXTRA = "onnx"
ORDER = ("update", "reset", "candidate")
OPSET = 14
IR_VERSION = 8


def _renamed(onnx_name: str, canonical: str, params: str) -> Finding:
    return Finding(f"{onnx_name}{params}", f"{canonical} is written as the ONNX activation {onnx_name}{params}")


_ACTIVATIONS = {
    "sigmoid": Activation("Sigmoid"),
    "tanh": Activation("Tanh"),
    "relu": Activation("Relu"),
    "softsign": Activation("Softsign"),
    "softplus": Activation("Softplus"),
    "elu": Activation("Elu", alpha=1.0),
    "linear": Activation("Affine", _renamed("Affine", "linear", "(alpha=1, beta=0)"), alpha=1.0, beta=0.0),
    "hard_sigmoid_keras2": Activation(
        "HardSigmoid", _renamed("HardSigmoid", "Keras 2 hard_sigmoid", "(alpha=0.2, beta=0.5)"), alpha=0.2, beta=0.5),
    "hard_sigmoid_keras3": Activation(
        "HardSigmoid", _renamed("HardSigmoid", "Keras 3 hard_sigmoid", "(alpha=1/6, beta=0.5)"), alpha=1.0 / 6.0,
        beta=0.5),
}

CAPS = Capabilities(
    target=NAME,
    label="the ONNX GRU",
    reset_after=(True, False),
    gate_activations=_ACTIVATIONS,
    candidate_activations=_ACTIVATIONS,
    recurrent_bias={True: True, False: True},
    optional_bias=True,
    written_dtype={"bfloat16": "float32", "float64": "float32"},
    dtype_notes={
        "bfloat16": Finding("bfloat16 as float32", "bfloat16 weights are written as float32 (lossless)"),
        "float64": Finding("float64 as float32",
                           "float64 weights are written as float32: onnxruntime's GRU has no float64 kernel "
                           "(relative rounding below 6e-8)"),
    },
)


def check_dependencies() -> None:
    if importlib.util.find_spec("onnx") is None:
        raise MissingDependencyError("Converting to ONNX needs the onnx package: pip install 'gruinspect[onnx]'.")


def layer_notes(layer: Layer) -> list[Finding]:
    return []


def _direction(layer: Layer) -> str:
    return "bidirectional" if layer.bidirectional else "reverse" if layer.reverse else "forward"


def _np_to_onnx_type(dtype: str) -> int:
    from onnx import TensorProto

    return {"float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[dtype]


def write(layers: list[MappedLayer], folder: str) -> list[dict]:
    import onnx
    from onnx import helper, numpy_helper

    nodes, inputs, outputs, inits = [], [], [], []
    for ml in layers:
        k = ml.layer.index
        dtype = ml.dtype
        elem = _np_to_onnx_type(dtype)
        D = len(ml.cells)
        H, I = ml.layer.units, ml.layer.input_size
        W = np.stack([cat(mc.blocks, ORDER, "input_kernel").T for mc in ml.cells]).astype(dtype)
        R = np.stack([cat(mc.blocks, ORDER, "recurrent_kernel").T for mc in ml.cells]).astype(dtype)
        use_bias = any(mc.plan.use_bias for mc in ml.cells)
        names = {"X": f"X_l{k}", "W": f"W_l{k}", "R": f"R_l{k}", "B": f"B_l{k}", "initial_h": f"initial_h_l{k}",
                 "Y": f"Y_l{k}", "Y_h": f"Y_h_l{k}"}
        inits += [numpy_helper.from_array(W, names["W"]), numpy_helper.from_array(R, names["R"])]
        if use_bias:
            B = np.stack([np.concatenate([cat(mc.blocks, ORDER, "bias"), cat(mc.blocks, ORDER, "recurrent_bias")])
                          for mc in ml.cells]).astype(dtype)
            inits.append(numpy_helper.from_array(B, names["B"]))
        acts, alphas, betas = [], [], []
        for mc in ml.cells:
            for canonical in (mc.plan.recurrent_activation, mc.plan.activation):
                act = _ACTIVATIONS[canonical]
                acts.append(act.name)
                takes = TAKES[act.name][0]
                if "alpha" in takes:
                    alphas.append(act.alpha)
                if "beta" in takes:
                    betas.append(act.beta)
        attrs = {"hidden_size": H, "direction": _direction(ml.layer),
                 "linear_before_reset": int(ml.cells[0].plan.reset_after), "activations": acts}
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
        node_inputs = [names["X"], names["W"], names["R"], names["B"] if use_bias else "", "", names["initial_h"]]
        nodes.append(helper.make_node("GRU", node_inputs, [names["Y"], names["Y_h"]],
                                      name=" + ".join(mc.cell.name for mc in ml.cells), **attrs))
        inputs += [helper.make_tensor_value_info(names["X"], elem, ["T", "batch", I]),
                   helper.make_tensor_value_info(names["initial_h"], elem, [D, "batch", H])]
        outputs += [helper.make_tensor_value_info(names["Y"], elem, ["T", D, "batch", H]),
                    helper.make_tensor_value_info(names["Y_h"], elem, [D, "batch", H])]
        for d, mc in enumerate(ml.cells):
            mc.written_as = {"file": "model.onnx", "node": nodes[-1].name, "direction": attrs["direction"],
                             "direction_index": d, "inputs": [names["X"], names["initial_h"]],
                             "outputs": [names["Y"], names["Y_h"]],
                             "linear_before_reset": attrs["linear_before_reset"],
                             "activations": acts[2 * d:2 * d + 2],
                             "summary": f"model.onnx: GRU node l{k}, {mc.direction}"}
    graph = helper.make_graph(nodes, "gruinspect_gru", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gruinspect")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    return [{"file": "model.onnx", "cells": [mc.cell.name for ml in layers for mc in ml.cells],
             "opset": OPSET, "nodes": [n.name for n in nodes]}]


def implementation() -> tuple[str, str | None]:
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__} (CPU)", None
    return "numpy transcription of the ONNX GRU equations", "onnxruntime is not installed"


def run(folder: str, ml: MappedLayer, xs: np.ndarray, h0s: list[np.ndarray]) -> list[CellRun]:
    name, fallback = implementation()
    path = os.path.join(folder, "model.onnx")
    dtype = ml.dtype
    k = ml.layer.index
    if fallback is None:
        y = _run_onnxruntime(path, k, xs.astype(dtype), np.stack(h0s).astype(dtype))
    else:
        y = _run_numpy(path, k, xs, np.stack(h0s), dtype)
    runs = []
    for d, mc in enumerate(ml.cells):
        states = y[:, d].astype(np.float64)
        backward = mc.direction == "backward"
        # ONNX realigns the reverse direction's Y to input time; flip it back to consumption order.
        runs.append(CellRun(states[::-1] if backward else states, backward, dtype, name, fallback))
    return runs


def _run_onnxruntime(path, k, xs, h0):
    import onnxruntime

    session = _session(path, onnxruntime)
    feed = {f"X_l{k}": xs, f"initial_h_l{k}": h0}
    # Every graph input must be fed: the other layers get one step of zeros.
    for arg in session.get_inputs():
        if arg.name not in feed:
            shape = [d if isinstance(d, int) else (1 if d == "T" else xs.shape[1]) for d in arg.shape]
            feed[arg.name] = np.zeros(shape, dtype=xs.dtype)
    return session.run([f"Y_l{k}"], feed)[0]


_SESSIONS: dict = {}


def _session(path, onnxruntime):
    key = (path, os.path.getmtime(path))
    if key not in _SESSIONS:
        _SESSIONS.clear()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        _SESSIONS[key] = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return _SESSIONS[key]


def _run_numpy(path, k, xs, h0, dtype):
    """The ONNX GRU equations (maths/onnx.py) on the initializers and attributes read back from the file."""
    import onnx
    from onnx import helper, numpy_helper

    from ..maths.onnx import gru, parse_activations

    model = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.input[0] == f"X_l{k}")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    W, R = inits[node.input[1]].astype(np.float64), inits[node.input[2]].astype(np.float64)
    D = W.shape[0]
    acts = parse_activations([a.decode() if isinstance(a, bytes) else a for a in attrs["activations"]],
                             attrs.get("activation_alpha", []), attrs.get("activation_beta", []), D)
    B = inits[node.input[3]].astype(np.float64) if node.input[3] else None
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    xs = xs.astype(dtype).astype(np.float64)
    y = np.zeros((xs.shape[0], D, xs.shape[1], attrs["hidden_size"]))
    for d in range(D):
        reverse = direction == "reverse" or (direction == "bidirectional" and d == 1)
        seq = xs[::-1] if reverse else xs
        states = gru(W[d], R[d], None if B is None else B[d], seq, h0[d].astype(dtype).astype(np.float64),
                     linear_before_reset=bool(attrs.get("linear_before_reset", 0)), f=acts[d][0], g=acts[d][1])
        y[:, d] = states[::-1] if reverse else states  # Y is aligned to input time
    return y
