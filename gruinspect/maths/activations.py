"""Every activation gruinspect computes, by canonical name.

Canonical names are the Keras names, except ``hard_sigmoid``, which is two different functions:
Keras 1/2 and tf.keras compute ``clip(0.2x + 0.5, 0, 1)`` (tf_keras ``src/backend.py``
``hard_sigmoid``), Keras 3 computes ``clip(x/6 + 0.5, 0, 1)`` (keras ``src/ops/nn.py``
``hard_sigmoid``, the relu6 form). They are ``hard_sigmoid_keras2`` and ``hard_sigmoid_keras3``.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..errors import UnsupportedError

_erf = np.vectorize(math.erf, otypes=[np.float64])


def sigmoid(x):
    """The logistic function, in the dtype of ``x``."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "hard_sigmoid_keras2": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "hard_sigmoid_keras3": lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "elu": _elu,
    "selu": lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0.0))),
    "swish": lambda x: x * sigmoid(x),
    "silu": lambda x: x * sigmoid(x),
    # Keras' gelu default is the exact erf form, not the tanh approximation.
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "exponential": np.exp,
}


def activation(name: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """The function of a canonical activation name, or of an ONNX activation as an ONNX cell names one
    that has no canonical equal (``"HardSigmoid(alpha=0.3, beta=0.6)"``, ``"LeakyRelu(alpha=0.01)"``);
    :class:`UnsupportedError` for an unknown one."""
    if name not in ACTIVATIONS:
        from .onnx import from_label

        fn = from_label(name) if isinstance(name, str) else None
        if fn is not None:
            return fn
        raise UnsupportedError(f"Unsupported activation {name!r}; known: {', '.join(ACTIVATIONS)}.")
    return ACTIVATIONS[name]


def keras_name(canonical: str) -> str:
    """How Keras writes a canonical activation in a layer config (both hard sigmoids are "hard_sigmoid")."""
    return canonical.split("_keras", 1)[0] if canonical.startswith("hard_sigmoid_keras") else canonical


def from_keras(name: str, generation: str) -> str:
    """The canonical name of a Keras config activation, for the Keras generation that runs it."""
    if name == "hard_sigmoid":
        return "hard_sigmoid_keras3" if generation == "keras3" else "hard_sigmoid_keras2"
    return name
