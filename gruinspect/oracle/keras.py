"""Keras GRU cells as the verification oracle (numpy in, numpy out).

* :func:`run_tf_keras_gru_cell` runs the tf-keras (Keras 2 / ``tf.keras``) ``GRUCell`` of a
  ``tf_keras.layers.GRU`` built with the given configuration. The stored arrays go through
  tf-keras's own loader conversion first (``preprocess_weights_for_loading`` in
  ``tf_keras/src/saving/legacy/hdf5_format.py``), exactly as ``load_weights`` would treat them:
  Keras 1's nine ``W_z, U_z, b_z, ...`` arrays are concatenated, and a ``CuDNNGRU``'s [6H] bias
  and cuDNN-ordered kernels become ``GRU(reset_after=True)`` weights (``_convert_rnn_weights``,
  the rule of docs/conventions.md, Keras 2 CuDNNGRU).
* :func:`run_keras3_gru_cell` runs Keras 3's ``keras.layers.GRUCell``.

Activation names are the framework's own (``"hard_sigmoid"``, ``"sigmoid"``, ...): the generation
of Keras that runs decides what they mean. ``hard_sigmoid`` is clip(0.2x + 0.5) in tf-keras and
clip(x/6 + 0.5) in Keras 3 (docs/keras-files.md, Activations), which is the point of running both.

Both Keras generations can live in one process: ``TF_USE_LEGACY_KERAS`` only decides what
``tf.keras`` points to, while ``tf_keras`` and ``keras`` are imported by their own names here.
TensorFlow is imported through :mod:`gruinspect.oracle.tf1` (which sets ``TF_USE_LEGACY_KERAS``
first), so the TF1 ``GRUCell`` stays available in the same process. Everything is imported
lazily, inside the functions.

Shapes: ``xs`` is [T, batch, input_size], ``h0`` is [batch, units]; both functions return the
hidden state after each step, [T, batch, units], in the dtype the cell computed in.
"""

from __future__ import annotations

import importlib.util

import sys

import numpy as np

from ..maths.activations import keras_name
from . import OracleRun, compute_dtype, versions

__all__ = ["tf_keras_available", "keras3_available", "run_tf_keras_gru_cell", "run_keras3_gru_cell",
           "keras_gru_oracle", "keras_gru_needs", "cudnn_gru_oracle", "keras1_gru_oracle"]

_DTYPES = ("float16", "bfloat16", "float32", "float64")
# The weights are overwritten at once; zeros also avoid the orthogonal initializer's QR, which
# TensorFlow has no bfloat16 kernel for.
_ZERO_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros", "bias_initializer": "zeros"}


def tf_keras_available() -> bool:
    """True when tensorflow and tf_keras can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_keras"))


def keras3_available() -> bool:
    """True when a ``keras`` package is installed (checked without importing it)."""
    return importlib.util.find_spec("keras") is not None


def _numpy_dtype(dtype: str) -> np.dtype:
    if dtype not in _DTYPES:
        raise TypeError(f"the Keras oracle runs float16, bfloat16, float32 or float64, not {dtype}")
    if dtype == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _check_sequence(xs, h0, dtype):
    xs = np.asarray(xs).astype(dtype)
    h0 = np.asarray(h0).astype(dtype)
    if xs.ndim != 3:
        raise ValueError(f"xs must be [T, batch, input_size], got shape {xs.shape}")
    if h0.ndim != 2 or h0.shape[0] != xs.shape[1]:
        raise ValueError(f"h0 must be [batch={xs.shape[1]}, units], got shape {h0.shape}")
    return xs, h0


def _import_tf_keras():
    from .tf1 import _import_tf

    tf = _import_tf()
    try:
        import tf_keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("The tf-keras oracle needs tf_keras (pip install 'gruinspect[tf]').") from exc
    return tf, tf_keras


def _import_keras3():
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("The Keras 3 oracle needs keras>=3 (pip install keras).") from exc
    if int(keras.__version__.split(".")[0]) < 3:
        raise ImportError(f"The Keras 3 oracle needs keras>=3; keras {keras.__version__} is installed.")
    return keras


def run_tf_keras_gru_cell(weights, xs, h0, *, units: int, reset_after: bool, activation: str = "tanh",
                          recurrent_activation: str = "sigmoid", use_bias: bool = True,
                          dtype: str = "float32", original_keras_version: str | None = None,
                          original_backend: str | None = None) -> np.ndarray:
    """Run tf-keras's ``GRUCell`` with weights as they are stored in a Keras file.

    ``weights`` is the list of stored arrays in the file's order: ``[kernel, recurrent_kernel,
    bias]`` (Keras 2, or a ``CuDNNGRU`` with its [6H] bias), ``[kernel, recurrent_kernel]`` without
    bias, or Keras 1's nine arrays with ``original_keras_version="1"``. They are converted by
    tf-keras's own loader for a ``GRU(reset_after=reset_after)`` and set on its cell, which then
    runs ``xs`` from ``h0`` in ``dtype``.

    >>> hs = run_tf_keras_gru_cell([k, u, b], xs, h0, units=4, reset_after=True)  # doctest: +SKIP
    """
    np_dtype = _numpy_dtype(dtype)
    xs, h0 = _check_sequence(xs, h0, np_dtype)
    tf, tf_keras = _import_tf_keras()
    from tf_keras.src.saving.legacy.hdf5_format import preprocess_weights_for_loading

    layer = tf_keras.layers.GRU(units, activation=activation, recurrent_activation=recurrent_activation,
                                use_bias=use_bias, reset_after=reset_after, dtype=dtype,
                                return_sequences=True, **_ZERO_INIT)
    layer.build((None, None, xs.shape[2]))
    converted = preprocess_weights_for_loading(
        layer, [np.asarray(w) for w in weights], original_keras_version=original_keras_version,
        original_backend=original_backend,
    )
    layer.set_weights([np.asarray(w).astype(np_dtype) for w in converted])
    cell = layer.cell
    state = tf.constant(h0, dtype=dtype)
    outputs = []
    for x in xs:
        output, states = cell(tf.constant(x, dtype=dtype), [state], training=False)
        state = states[0] if isinstance(states, (list, tuple)) else states
        outputs.append(output.numpy())
    return np.stack(outputs).astype(np_dtype)


def run_keras3_gru_cell(kernel, recurrent_kernel, bias, xs, h0, *, units: int, reset_after: bool,
                        activation: str = "tanh", recurrent_activation: str = "sigmoid",
                        use_bias: bool = True, dtype: str = "float32") -> np.ndarray:
    """Run Keras 3's ``keras.layers.GRUCell`` with the stored ``kernel`` [I, 3H],
    ``recurrent_kernel`` [H, 3H] and ``bias`` ([3H], [2, 3H], or None without bias).

    Works with whichever Keras 3 backend is configured; the result is converted to numpy.
    """
    np_dtype = _numpy_dtype(dtype)
    xs, h0 = _check_sequence(xs, h0, np_dtype)
    if use_bias and bias is None:
        raise ValueError("use_bias=True needs a bias")
    keras = _import_keras3()
    cell = keras.layers.GRUCell(units, activation=activation, recurrent_activation=recurrent_activation,
                                use_bias=use_bias, reset_after=reset_after, dtype=dtype, **_ZERO_INIT)
    cell.build((None, xs.shape[2]))
    values = [kernel, recurrent_kernel] + ([bias] if use_bias else [])
    cell.set_weights([np.asarray(v).astype(np_dtype) for v in values])
    state = h0
    outputs = []
    for x in xs:
        output, state = cell(x, state, training=False)
        outputs.append(keras.ops.convert_to_numpy(output))
    return np.stack(outputs).astype(np_dtype)


# ------------------------------------------------------------------ verify adapters (LayoutSpec.oracle)

_ALL_DTYPES = ("float16", "bfloat16", "float32", "float64")
# Keras 1's nine arrays in the order tf-keras's Keras 1 loader concatenates them.
KERAS1_ORDER = ("W_z", "U_z", "b_z", "W_r", "U_r", "b_r", "W_h", "U_h", "b_h")


def _keras3_backend() -> str:
    keras = sys.modules.get("keras")
    try:
        return keras.backend.backend() if keras else "?"
    except Exception:  # pragma: no cover - a broken backend still gets a report
        return "?"


def _use_bias(cell, t) -> bool:
    return bool(cell.config.get("use_bias", True)) and ("bias" in t or "b_z" in t)


def keras_gru_needs(cell) -> tuple[str, ...]:
    """Keras 3 cells run in Keras 3 (any backend); the others in tf-keras."""
    from ..layouts._keras import keras_generation_of

    return ("keras",) if keras_generation_of(cell) == "keras3" else ("tensorflow", "tf_keras")


def keras_gru_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """The ``GRUCell`` of the Keras generation that wrote the file (Keras 3, else tf-keras)."""
    from ..layouts._keras import keras_generation_of

    act, act_r = keras_name(acts.activation), keras_name(acts.recurrent_activation)
    generation = keras_generation_of(cell)
    compute = compute_dtype(cell.dtype, _ALL_DTYPES)
    use_bias = _use_bias(cell, t)
    if generation == "keras3":
        hs = run_keras3_gru_cell(t["kernel"], t["recurrent_kernel"], t.get("bias"), xs, h0, units=cell.units,
                                 reset_after=cell.reset_after, activation=act, recurrent_activation=act_r,
                                 use_bias=use_bias, dtype=compute)
        return OracleRun(hs, compute, f"keras.layers.GRUCell ({versions('keras')}, {_keras3_backend()} backend)")
    weights = [t["kernel"], t["recurrent_kernel"]] + ([t["bias"]] if "bias" in t else [])
    version = "1" if generation == "keras1" else None
    hs = run_tf_keras_gru_cell(weights, xs, h0, units=cell.units, reset_after=cell.reset_after, activation=act,
                               recurrent_activation=act_r, use_bias=use_bias, dtype=compute,
                               original_keras_version=version)
    return _tf_keras_run(cell, hs, compute, version)


def keras1_gru_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """tf-keras's GRUCell after tf-keras's own Keras 1 weight conversion (the nine arrays concatenated)."""
    compute = compute_dtype(cell.dtype, _ALL_DTYPES)
    weights = [t[k] for k in KERAS1_ORDER if k in t]
    hs = run_tf_keras_gru_cell(weights, xs, h0, units=cell.units, reset_after=cell.reset_after,
                               activation=keras_name(acts.activation),
                               recurrent_activation=keras_name(acts.recurrent_activation),
                               use_bias=_use_bias(cell, t), dtype=compute, original_keras_version="1")
    return _tf_keras_run(cell, hs, compute, "1")


def _tf_keras_run(cell, hs, compute, version) -> OracleRun:
    what = "tf_keras GRUCell" + (" after tf-keras's Keras 1 weight conversion" if version == "1" else "")
    notes = []
    if not any(cell.config.get(k) for k in ("keras_generation", "keras_version")):
        notes.append("the file does not say which Keras wrote this cell: the framework check runs tf-keras's "
                     "GRUCell (Keras 2 and 3 differ only in hard_sigmoid)")
    return OracleRun(hs, compute, f"{what} ({versions('tf_keras')})", notes)


def cudnn_gru_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """cuDNN needs a GPU: tf-keras's GRU(reset_after=True), into which tf-keras itself loads
    CuDNNGRU weights (``hdf5_format._convert_rnn_weights``)."""
    compute = compute_dtype(cell.dtype, _ALL_DTYPES)
    hs = run_tf_keras_gru_cell([t["kernel"], t["recurrent_kernel"], t["bias"]], xs, h0, units=cell.units,
                               reset_after=True, activation="tanh", recurrent_activation="sigmoid", dtype=compute)
    return OracleRun(hs, compute,
                     f"tf_keras GRUCell(reset_after=True) fed the CuDNNGRU weights through tf-keras's own "
                     f"converter (hdf5_format._convert_rnn_weights) ({versions('tf_keras')})",
                     ["cuDNN cannot run on this machine: the framework check runs tf-keras's GRU("
                      "reset_after=True), into which tf-keras itself loads CuDNNGRU weights"])
