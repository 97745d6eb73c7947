"""Reference implementations that gruinspect checks its block naming against.

Each submodule wraps one framework's own GRU implementation (imported lazily, only when a
function is called) behind numpy-in / numpy-out functions, plus the ``verify`` adapters that a
layout's :class:`~gruinspect.layouts.spec.Oracle` names: ``(cell, tensors, xs, h0, acts) ->
OracleRun``. They stay independent of :mod:`gruinspect.maths`: a framework cell is a second
reading of the weights, not a copy of ours.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass
class OracleRun:
    """What a framework cell produced: every state [T, batch, H], the dtype it computed in, a
    sentence naming the implementation (with versions) and notes for the report. ``valid``
    [T, batch], when given, marks the states the framework computed: the others (past a
    sequence's length) are zeros, and the check compares them with zeros."""

    hs: Any
    compute_dtype: str
    description: str
    notes: list[str] = field(default_factory=list)
    valid: Any = None


class NotExpressible(Exception):
    """The framework cell cannot hold this cell's configuration (e.g. a fixed activation)."""


def versions(*modules: str) -> str:
    """"TensorFlow 2.21.0, tf-keras 2.21.0" for the given (already imported) modules."""
    names = {"tensorflow": "TensorFlow", "tf_keras": "tf-keras", "keras": "Keras", "torch": "torch",
             "onnxruntime": "onnxruntime"}
    parts = []
    for m in modules:
        version = getattr(sys.modules.get(m), "__version__", None)
        if version:
            parts.append(f"{names.get(m, m)} {version}")
    return ", ".join(parts) or "version unknown"


def compute_dtype(dtype: str, supported=("float16", "float32", "float64")) -> str:
    """The dtype a framework cell computes a ``dtype`` cell in (float32 when it has no kernel for it)."""
    return dtype if dtype in supported else "float32"


def upcast_note(cell, compute: str) -> list[str]:
    """A note when the framework computed in another dtype than the cell stores."""
    if compute == cell.dtype:
        return []
    import numpy as np

    from ..store import numpy_dtype

    how = "exactly" if np.dtype(numpy_dtype(cell.dtype)).itemsize < np.dtype(compute).itemsize else "rounded"
    return [f"the framework cell has no {cell.dtype} kernel: the {cell.dtype} weights run in {compute} "
            f"(converted {how})"]


def require_default_activations(acts, what: str) -> None:
    """Raise :class:`NotExpressible` unless the cell is sigmoid / tanh (fixed in ``what``)."""
    if tuple(acts) != ("tanh", "sigmoid"):
        raise NotExpressible(f"{what} has fixed sigmoid/tanh activations; the cell uses {acts[1]}/{acts[0]}")
