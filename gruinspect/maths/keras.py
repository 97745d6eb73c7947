"""Keras ``GRU`` on its fused tensors (keras ``src/layers/rnn/gru.py`` ``GRUCell.call``; tf_keras
``src/layers/rnn/gru.py``)::

    kernel K [I, 3H], recurrent_kernel U [H, 3H]: columns z | r | h
    bias [3H] (one set), or [2, 3H] (row 0 input, row 1 recurrent), or none
    z = act_r(x K_z + b_z + h U_z [+ rb_z]);  r likewise
    reset_after=False: c = act(x K_h + b_h + (r * h) U_h)
    reset_after=True:  c = act(x K_h + b_h + r * (h U_h + rb_h))
    h' = z * h + (1 - z) * c

Computed in the dtype of the inputs; returns every state [T, batch, H].
"""
from __future__ import annotations

import numpy as np

from .activations import activation


def gru(K, U, bias, xs, h0, *, reset_after: bool, activation_name="tanh", recurrent_activation_name="sigmoid"):
    """Keras GRUCell over ``xs`` [T, batch, I] from ``h0``; ``bias`` [3H], [2, 3H] or None."""
    act, act_r = activation(activation_name), activation(recurrent_activation_name)
    H = U.shape[0]
    bi = br = np.zeros(3 * H, K.dtype)
    if bias is not None and np.ndim(bias) == 2:
        bi, br = bias[0], bias[1]
    elif bias is not None:
        bi = bias
    h, out = h0, []
    for x in xs:
        gx = x @ K + bi
        if reset_after:
            gh = h @ U + br
            z = act_r(gx[:, :H] + gh[:, :H])
            r = act_r(gx[:, H:2 * H] + gh[:, H:2 * H])
            c = act(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        else:
            z = act_r(gx[:, :H] + h @ U[:, :H])
            r = act_r(gx[:, H:2 * H] + h @ U[:, H:2 * H])
            c = act(gx[:, 2 * H:] + (r * h) @ U[:, 2 * H:])
        h = z * h + (1 - z) * c
        out.append(h)
    return np.stack(out)
