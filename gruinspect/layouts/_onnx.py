"""ONNX GRU attributes in gruinspect's terms, without numpy: activation names and parameters.

The GRU node names its activations per direction (``activations`` = [f, g] per direction) and
takes ``activation_alpha`` / ``activation_beta`` in list order, each function consuming only the
parameters it has; when a list runs out the defaults below apply.
"""
from __future__ import annotations

import math

# ONNX RNN activation -> (parameters it takes, default alpha, default beta)
# (onnxruntime onnxruntime/core/providers/cpu/rnn/rnn_helpers.cc NormalizeActivationArgumentAndGetAlphaBetaCount).
TAKES: dict[str, tuple[tuple[str, ...], float, float]] = {
    "Sigmoid": ((), 0.0, 0.0), "Tanh": ((), 0.0, 0.0), "Relu": ((), 0.0, 0.0), "Softsign": ((), 0.0, 0.0),
    "Softplus": ((), 0.0, 0.0), "Affine": (("alpha", "beta"), 1.0, 0.0), "LeakyRelu": (("alpha",), 0.01, 0.0),
    "ThresholdedRelu": (("alpha",), 1.0, 0.0), "ScaledTanh": (("alpha", "beta"), 1.0, 1.0),
    "HardSigmoid": (("alpha", "beta"), 0.2, 0.5), "Elu": (("alpha",), 1.0, 0.0),
}

# Canonical activation -> the ONNX function and parameters that compute it exactly.
FROM_CANONICAL: dict[str, tuple[str, float | None, float | None]] = {
    "sigmoid": ("Sigmoid", None, None), "tanh": ("Tanh", None, None), "relu": ("Relu", None, None),
    "softsign": ("Softsign", None, None), "softplus": ("Softplus", None, None), "elu": ("Elu", 1.0, None),
    "linear": ("Affine", 1.0, 0.0), "hard_sigmoid_keras2": ("HardSigmoid", 0.2, 0.5),
    "hard_sigmoid_keras3": ("HardSigmoid", 1.0 / 6.0, 0.5),
}


def _close(a: float | None, b: float | None) -> bool:
    # attributes are float32: 1/6 is stored as 0.16666667163...
    return a is None or b is None or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)


def canonical(name: str, alpha: float | None, beta: float | None) -> str | None:
    """The canonical name of an ONNX activation with its parameters, or None when gruinspect has
    no canonical function equal to it (e.g. HardSigmoid(alpha=0.3))."""
    for canon, (onnx_name, a, b) in FROM_CANONICAL.items():
        if onnx_name.lower() == name.lower() and _close(alpha, a) and _close(beta, b):
            return canon
    return None


def parse_activations(names: list[str], alphas: list[float], betas: list[float], directions: int
                      ) -> list[list[tuple[str, float, float]]]:
    """Per direction ``[(f, alpha, beta), (g, alpha, beta)]`` from a GRU node's attributes; raises
    ValueError for an unknown function or a wrong count. Defaults: Sigmoid, Tanh per direction."""
    if not names:
        names = ["Sigmoid", "Tanh"] * directions
    if len(names) != 2 * directions:
        raise ValueError(f"{len(names)} activations for {directions} direction(s); 2 per direction are needed")
    alphas, betas = list(alphas), list(betas)
    out = []
    for name in names:
        key = next((k for k in TAKES if k.lower() == name.lower()), None)
        if key is None:
            raise ValueError(f"unknown activation {name!r}")
        takes, a, b = TAKES[key]
        if "alpha" in takes and alphas:
            a = alphas.pop(0)
        if "beta" in takes and betas:
            b = betas.pop(0)
        out.append((key, float(a), float(b)))
    return [out[2 * d:2 * d + 2] for d in range(directions)]


