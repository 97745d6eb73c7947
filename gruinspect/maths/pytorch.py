"""PyTorch ``nn.GRU`` / ``nn.GRUCell`` on their fused tensors (torch ``nn/modules/rnn.py``, the
``GRU`` docstring; ``aten/src/ATen/native/RNN.cpp`` ``GRUCell``)::

    weight_ih [3H, I], weight_hh [3H, H], bias_ih [3H], bias_hh [3H]: rows r | z | n
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Computed in the dtype of the inputs; returns every state [T, batch, H].
"""
from __future__ import annotations

import numpy as np

from .activations import sigmoid


def gru(w_ih, w_hh, b_ih, b_hh, xs, h0):
    """One direction of one ``nn.GRU`` layer over ``xs`` [T, batch, I]; biases may be None."""
    H = w_hh.shape[1]
    b_ih = np.zeros(3 * H, w_ih.dtype) if b_ih is None else b_ih
    b_hh = np.zeros(3 * H, w_hh.dtype) if b_hh is None else b_hh
    h, out = h0, []
    for x in xs:
        gi = x @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)
