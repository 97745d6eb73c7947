"""The explicit GRU step, written gate by gate from canonical blocks (DESIGN.md), in float64.

    r = act_r(x W_r + b_r + h U_r [+ rb_r])
    z = act_r(x W_z + b_z + h U_z [+ rb_z])
    reset_after=False:  c = act(x W_h + b_h + (r * h) U_h)
    reset_after=True:   c = act(x W_h + b_h + r * (h U_h + rb_h))
    h' = z * h + (1 - z) * c

This is the reference every layout is checked against; it never looks at a stored tensor.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .errors import UnsupportedError


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    # Keras 2 / tf.keras: clip(0.2x + 0.5); Keras 3: clip(x/6 + 0.5) (FORMATS.md §6.1).
    "hard_sigmoid_keras2": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "hard_sigmoid_keras3": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0.0))),
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    # Keras' gelu default is the exact erf form, not the tanh approximation.
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "exponential": np.exp,
}


def activation(name: str | None) -> Callable[[np.ndarray], np.ndarray]:
    if name not in ACTIVATIONS:
        raise UnsupportedError(f"Unsupported activation {name!r}; known: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def step(blocks: dict[tuple[str, str], np.ndarray], x: np.ndarray, h: np.ndarray, *, reset_after: bool,
         activation_name: str = "tanh", recurrent_activation_name: str = "sigmoid") -> np.ndarray:
    """One GRU step in float64 from canonical blocks; ``x`` [batch, I], ``h`` [batch, H]."""
    act = activation(activation_name)
    act_r = activation(recurrent_activation_name)
    x = np.asarray(x, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)

    def get(gate, role):
        values = blocks.get((gate, role))
        return None if values is None else np.asarray(values, dtype=np.float64)

    def pre(gate):
        out = x @ get(gate, "input_kernel")
        bias = get(gate, "bias")
        return out if bias is None else out + bias

    def rec(gate):
        out = h @ get(gate, "recurrent_kernel")
        rbias = get(gate, "recurrent_bias")
        return out if rbias is None else out + rbias

    r = act_r(pre("reset") + rec("reset"))
    z = act_r(pre("update") + rec("update"))
    if reset_after:
        c = act(pre("candidate") + r * rec("candidate"))
    else:
        # (r * h) @ U_h: the reset gate multiplies the state before the matmul (TF1, Keras False).
        c_rec = (r * h) @ get("candidate", "recurrent_kernel")
        rbias = get("candidate", "recurrent_bias")
        c = act(pre("candidate") + c_rec + (0.0 if rbias is None else rbias))
    return z * h + (1.0 - z) * c


def run(blocks: dict[tuple[str, str], np.ndarray], xs: np.ndarray, h0: np.ndarray, **kwargs) -> np.ndarray:
    """Run :func:`step` over ``xs`` [T, batch, I] from ``h0``; returns every state [T, batch, H]."""
    h = np.asarray(h0, dtype=np.float64)
    out = []
    for x in xs:
        h = step(blocks, x, h, **kwargs)
        out.append(h)
    return np.stack(out)
