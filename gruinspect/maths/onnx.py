"""The ONNX ``GRU`` operator on its fused tensors, and the ONNX activation functions.

onnx/onnx ``onnx/defs/rnn/defs.cc`` (GRU, opset 14) and ``docs/Operators.md#GRU``, per direction
d, gate order z | r | h along the 3H rows, W [D, 3H, I], R [D, 3H, H], B [D, 6H] = [Wb, Rb]::

    z = f(clip(X W_z^T + H R_z^T + Wb_z + Rb_z))
    r = f(clip(X W_r^T + H R_r^T + Wb_r + Rb_r))
    linear_before_reset = 0:  h~ = g(clip(X W_h^T + (r * H) R_h^T + Rb_h + Wb_h))
    linear_before_reset = 1:  h~ = g(clip(X W_h^T + r * (H R_h^T + Rb_h) + Wb_h))
    H' = (1 - z) * h~ + z * H

``clip`` (0 = none) bounds every activation's input to [-clip, clip]. Activations take
``activation_alpha`` / ``activation_beta`` in list order, each function taking only the
parameters it has (the tables live in :mod:`gruinspect.layouts._onnx`, which ``list`` imports
without numpy).
"""
from __future__ import annotations

import re

import numpy as np

from ..layouts._onnx import FROM_CANONICAL, TAKES, canonical, parse_activations  # noqa: F401 (re-exported)
from .activations import sigmoid

FUNCTIONS = {
    "Sigmoid": lambda x, a, b: sigmoid(x),
    "Tanh": lambda x, a, b: np.tanh(x),
    "Relu": lambda x, a, b: np.maximum(x, 0.0),
    "Softsign": lambda x, a, b: x / (1.0 + np.abs(x)),
    "Softplus": lambda x, a, b: np.logaddexp(0.0, x),
    "Affine": lambda x, a, b: a * x + b,
    "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "ThresholdedRelu": lambda x, a, b: np.where(x > a, x, 0.0),
    "ScaledTanh": lambda x, a, b: a * np.tanh(b * x),
    "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0.0, 1.0),
    "Elu": lambda x, a, b: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
}

_LABEL = re.compile(r"([A-Za-z]+)(?:\((?:alpha=([-+0-9.eE]+))?(?:, )?(?:beta=([-+0-9.eE]+))?\))?")


def from_label(name: str):
    """The function of an ONNX activation as ``layouts/onnx_gru.py`` labels it
    ("HardSigmoid(alpha=0.3, beta=0.6)"), or None when the name is not one."""
    match = _LABEL.fullmatch(name)
    if match is None or match.group(1) not in FUNCTIONS:
        return None
    fn = match.group(1)
    _, alpha, beta = TAKES[fn]
    # ONNX attributes are float32: the label's value is the float32 the node holds.
    a = float(np.float32(match.group(2))) if match.group(2) else alpha
    b = float(np.float32(match.group(3))) if match.group(3) else beta
    return lambda x: FUNCTIONS[fn](x, a, b)


def gru(W, R, B, xs, h0, *, linear_before_reset: bool, f=("Sigmoid", 0.0, 0.0), g=("Tanh", 0.0, 0.0),
        clip: float = 0.0):
    """One direction of the ONNX GRU over ``xs`` [T, batch, I] (in the order given) from ``h0``.

    ``W`` [3H, I], ``R`` [3H, H], ``B`` [6H] or None; returns every state [T, batch, H]."""
    H = R.shape[-1]
    B = np.zeros(6 * H, W.dtype) if B is None else B
    wb, rb = B[:3 * H], B[3 * H:]
    fa, ga = FUNCTIONS[f[0]], FUNCTIONS[g[0]]

    def bound(v):
        return np.clip(v, -clip, clip) if clip else v

    h, out = h0, []
    for x in xs:
        gx = x @ W.T + wb
        z = fa(bound(gx[:, :H] + h @ R[:H].T + rb[:H]), f[1], f[2])
        r = fa(bound(gx[:, H:2 * H] + h @ R[H:2 * H].T + rb[H:2 * H]), f[1], f[2])
        if linear_before_reset:
            c = ga(bound(gx[:, 2 * H:] + r * (h @ R[2 * H:].T + rb[2 * H:])), g[1], g[2])
        else:
            c = ga(bound(gx[:, 2 * H:] + (r * h) @ R[2 * H:].T + rb[2 * H:]), g[1], g[2])
        h = (1.0 - z) * c + z * h
        out.append(h)
    return np.stack(out)
