"""The TFLite operators a converted Keras GRU step is made of, on the stored [out, in] weights.

tensorflow/lite/kernels: FULLY_CONNECTED computes ``x @ W.T + b`` with W [out, in]; the step
(gruinspect/layouts/tflite_gru.py) cuts the FC outputs into the column bands the graph's SPLIT /
STRIDED_SLICE ops take, then::

    z = LOGISTIC(x_z + h_z);  r = LOGISTIC(x_r + h_r)
    reset_after=True:   c = TANH(x_c + r * h_c)
    reset_after=False:  c = TANH(x_c + FULLY_CONNECTED(r * h, U_c, b_c))
    h' = z * h + (1 - z) * c      (ADD(MUL(z, h), MUL(SUB(1, z), c)))

``bands`` is ``{"x": [[gate, start, stop], ...], "h": [...]}``: which output columns of the
input-side and state-side FULLY_CONNECTED feed which gate.
"""
from __future__ import annotations

import numpy as np

from .activations import sigmoid


def gru(t: dict, bands: dict, xs, h0, *, units: int, reset_after: bool) -> np.ndarray:
    """States [T, batch, H] from ``xs`` [T, batch, I] and ``h0`` [batch, H], float64."""
    W, bx = t["input_weights"], t.get("input_bias")
    R, bh = t.get("recurrent_weights"), t.get("recurrent_bias")
    h = np.asarray(h0, np.float64)
    out = []
    for x in np.asarray(xs, np.float64):
        gx = x @ W.T + (0.0 if bx is None else bx)
        gh = h @ R.T + (0.0 if bh is None else bh)
        xg = {g: gx[:, a:b] for g, a, b in bands["x"]}
        hg = {g: gh[:, a:b] for g, a, b in bands.get("h", [])}
        z = sigmoid(xg["update"] + hg["update"])
        r = sigmoid(xg["reset"] + hg["reset"])
        if reset_after:
            c = np.tanh(xg["candidate"] + r * hg["candidate"])
        else:
            cb = t.get("candidate_bias")
            c = np.tanh(xg["candidate"] + (r * h) @ t["candidate_weights"].T + (0.0 if cb is None else cb))
        h = z * h + (1.0 - z) * c
        out.append(h)
    return np.stack(out)
