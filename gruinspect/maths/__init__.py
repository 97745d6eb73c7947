"""The reference maths: one activation table, one step per convention, one tolerance table.

* :mod:`.activations` — every activation by canonical name (:data:`ACTIVATIONS`);
* :mod:`.canonical` — the explicit GRU step on canonical blocks (:func:`step`, :func:`run`),
  the reference every layout is checked against;
* one module per convention with its equations on the *fused* tensors as the framework stores
  them (:mod:`.tf1`, :mod:`.keras`, ...), used by ``verify``'s equations check and by the numpy
  fallbacks of ``convert``;
* :mod:`.tolerances` — the error allowed by the dtype a result was computed in.

Everything here is float64 numpy unless a function says otherwise, and never reads a file.
"""
from __future__ import annotations

from .activations import ACTIVATIONS, activation, sigmoid
from .canonical import run, step
from .tolerances import TOLERANCES, tolerance

__all__ = ["ACTIVATIONS", "activation", "sigmoid", "step", "run", "TOLERANCES", "tolerance"]
