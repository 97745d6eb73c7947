"""The explicit GRU step on canonical blocks, gate by gate, in float64.

    r = act_r(x W_r + b_r + h U_r [+ rb_r])
    z = act_r(x W_z + b_z + h U_z [+ rb_z])
    reset_after=False:  c = act(x W_h + b_h + (r * h) U_h [+ rb_h])
    reset_after=True:   c = act(x W_h + b_h + r * (h U_h + rb_h))
    h' = z * h + (1 - z) * c

Blocks are ``{(gate, role): array}`` in ``x @ W`` orientation (``gruinspect.cell``). A recurrent
bias of a reset-before cell is added outside the reset product (ONNX ``linear_before_reset=0``).
This is the reference every layout is checked against; it never looks at a stored tensor.
"""
from __future__ import annotations

import numpy as np

from .activations import activation


def step(blocks: dict[tuple[str, str], np.ndarray], x: np.ndarray, h: np.ndarray, *, reset_after: bool,
         activation_name: str = "tanh", recurrent_activation_name: str = "sigmoid", clip: float = 0.0) -> np.ndarray:
    """One GRU step in float64 from canonical blocks; ``x`` [batch, I], ``h`` [batch, H].

    ``clip`` > 0 bounds every activation's input to [-clip, clip] (the ONNX GRU ``clip`` attribute,
    onnx/defs/rnn/defs.cc); 0 means no bound."""
    act = clipped(activation(activation_name), clip)
    act_r = clipped(activation(recurrent_activation_name), clip)
    return gates(blocks, np.asarray(x, dtype=np.float64), np.asarray(h, dtype=np.float64),
                 reset_after=reset_after, act=act, act_r=act_r)[3]


def gates(blocks: dict[tuple[str, str], np.ndarray], x: np.ndarray, h: np.ndarray, *, reset_after: bool,
          act, act_r) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step returning every gate, ``(r, z, c, h')``, with the activations given as functions
    (what :func:`step` computes, for callers that need the gate values themselves)."""

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
    return r, z, c, z * h + (1.0 - z) * c


def clipped(fn, clip: float):
    """``fn`` with its input bounded to [-clip, clip] (unchanged when clip is 0)."""
    return fn if not clip else (lambda v: fn(np.clip(v, -clip, clip)))


def run(blocks: dict[tuple[str, str], np.ndarray], xs: np.ndarray, h0: np.ndarray, **kwargs) -> np.ndarray:
    """Run :func:`step` over ``xs`` [T, batch, I] from ``h0``; returns every state [T, batch, H]."""
    h = np.asarray(h0, dtype=np.float64)
    out = []
    for x in xs:
        h = step(blocks, x, h, **kwargs)
        out.append(h)
    return np.stack(out)
