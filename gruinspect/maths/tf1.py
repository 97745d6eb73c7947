"""TF1 GRU cells on their fused tensors: GRUCell / GRUBlockCell and CudnnCompatibleGRUCell.

GRUCell (tensorflow ``python/ops/rnn_cell_impl.py``, now tf_keras
``src/layers/rnn/legacy_cells.py``, ``GRUCell.call``); GRUBlockCell computes the same
(tensorflow ``core/kernels/rnn/gru_ops.h``)::

    [r | u] = act_r([x, h] @ G + gb)            G [I+H, 2H], gb [2H]: reset columns first
    c       = act([x, r * h] @ C + cb)          C [I+H, H],  cb [H]
    h'      = u * h + (1 - u) * c

CudnnCompatibleGRUCell (tensorflow 1.x ``contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py``) keeps
the candidate's input and hidden projections apart and resets after the hidden matmul::

    c = act(x @ Ci + bi + r * (h @ Ch + bh))

Inputs are [T, batch, I], ``h0`` [batch, H]; every function returns every state [T, batch, H],
computed in the dtype of its inputs.
"""
from __future__ import annotations

import numpy as np

from .activations import activation


def gru_cell(G, gb, C, cb, xs, h0, *, activation_name="tanh", recurrent_activation_name="sigmoid"):
    """GRUCell's equations on its fused tensors (``gb``/``cb`` may be None: no bias)."""
    act, act_r = activation(activation_name), activation(recurrent_activation_name)
    H = h0.shape[1]
    gb = np.zeros(2 * H, G.dtype) if gb is None else gb
    cb = np.zeros(H, C.dtype) if cb is None else cb
    h, out = h0, []
    for x in xs:
        ru = act_r(np.concatenate([x, h], 1) @ G + gb)
        r, u = ru[:, :H], ru[:, H:]
        c = act(np.concatenate([x, r * h], 1) @ C + cb)
        h = u * h + (1 - u) * c
        out.append(h)
    return np.stack(out)


def cudnn_compatible_gru_cell(G, gb, Ci, bi, Ch, bh, xs, h0, *, activation_name="tanh",
                              recurrent_activation_name="sigmoid"):
    """CudnnCompatibleGRUCell's equations: reset gate applied after the hidden projection."""
    act, act_r = activation(activation_name), activation(recurrent_activation_name)
    H = h0.shape[1]
    h, out = h0, []
    for x in xs:
        ru = act_r(np.concatenate([x, h], 1) @ G + gb)
        r, u = ru[:, :H], ru[:, H:]
        c = act(x @ Ci + bi + r * (h @ Ch + bh))
        h = u * h + (1 - u) * c
        out.append(h)
    return np.stack(out)
