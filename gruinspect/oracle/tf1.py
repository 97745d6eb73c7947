"""TensorFlow 1.x GRU cells as the verification oracle (numpy in, numpy out).

* :func:`run_tf_gru_cell` runs the real ``tf.compat.v1.nn.rnn_cell.GRUCell`` (the tf_keras
  legacy cell) with given fused tensors.
* :func:`run_gru_block_cell` runs the real ``GRUBlockCell`` kernel through ``tf.raw_ops``.
* :func:`cudnn_compatible_gru_cell_reference` is **not** TensorFlow: ``CudnnCompatibleGRUCell``
  lived in ``tf.contrib.cudnn_rnn``, which no installable TensorFlow ships any more, so this is a
  numpy reading of that cell's equations (:mod:`gruinspect.maths.tf1`).

TensorFlow is imported lazily, inside the functions; importing this module costs nothing.
``tf.compat.v1.nn.rnn_cell.GRUCell`` only exists when TensorFlow was imported with
``TF_USE_LEGACY_KERAS=1`` (otherwise Keras 3 replaces it with a stub that raises). The functions
set that variable with ``os.environ.setdefault`` before their first ``import tensorflow``; if
TensorFlow was already imported without it, they fall back to the same class imported directly
from ``tf_keras.src.layers.rnn.legacy_cells``.

The functions work in eager mode (TensorFlow 2's default) and, when eager execution has been
disabled, in a private graph with a throw-away session, so they can be called any number of
times in one process.

Shapes: ``xs`` is [T, batch, input_size], ``h0`` is [batch, units]; every function returns the
hidden states after each step, [T, batch, units] (the last one is the final state).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from ..maths.tf1 import cudnn_compatible_gru_cell
from . import OracleRun, compute_dtype, require_default_activations, upcast_note, versions

__all__ = [
    "tensorflow_available",
    "run_tf_gru_cell",
    "run_gru_block_cell",
    "cudnn_compatible_gru_cell_reference",
    "gru_cell_oracle",
    "gru_block_cell_oracle",
    "cudnn_compatible_oracle",
]

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_GRU_CELL_ROLES = ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")


def tensorflow_available() -> bool:
    """True when ``import tensorflow`` can be attempted (without importing it)."""
    return importlib.util.find_spec("tensorflow") is not None


def _import_tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The TensorFlow oracle needs TensorFlow (pip install 'gruinspect[tf]')."
        ) from exc
    return tf


def _gru_cell_class(tf):
    try:
        return tf.compat.v1.nn.rnn_cell.GRUCell
    except AttributeError:
        pass
    try:
        from tf_keras.src.layers.rnn.legacy_cells import GRUCell
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "tf.compat.v1.nn.rnn_cell.GRUCell is unavailable: install tf_keras and set "
            "TF_USE_LEGACY_KERAS=1 before TensorFlow is imported."
        ) from exc
    return GRUCell


def _run(tf, build):
    """Run ``build() -> (setup_ops, output)`` eagerly, or in a private graph and session."""
    if tf.executing_eagerly():
        _, output = build()
        return output.numpy()
    graph = tf.Graph()
    with graph.as_default():
        setup_ops, output = build()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            if setup_ops:
                sess.run(setup_ops)
            return sess.run(output)


def _as_float(name, value, dtype):
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError("%s must be a numeric array, got dtype %s" % (name, array.dtype))
    return np.ascontiguousarray(array, dtype=dtype)


def _common_dtype(first):
    dtype = np.asarray(first).dtype
    if dtype not in _FLOAT_DTYPES:
        raise TypeError("weights must be float16, float32 or float64, got %s" % dtype)
    return dtype


def _check_sequence(xs, h0, dtype):
    xs = _as_float("xs", xs, dtype)
    h0 = _as_float("h0", h0, dtype)
    if xs.ndim != 3:
        raise ValueError("xs must be [T, batch, input_size], got shape %s" % (xs.shape,))
    if h0.ndim != 2 or h0.shape[0] != xs.shape[1]:
        raise ValueError("h0 must be [batch=%d, units], got shape %s" % (xs.shape[1], h0.shape))
    return xs, h0, xs.shape[2], h0.shape[1]


def _check_shape(name, array, shape):
    if tuple(array.shape) != tuple(shape):
        raise ValueError("%s must have shape %s, got %s" % (name, tuple(shape), tuple(array.shape)))


def run_tf_gru_cell(gates_kernel, gates_bias, candidate_kernel, candidate_bias, xs, h0) -> np.ndarray:
    """Run TensorFlow's own ``GRUCell`` with the given fused tensors.

    Arguments are the four GRUCell variables: ``gates/kernel`` [I+H, 2H], ``gates/bias`` [2H],
    ``candidate/kernel`` [I+H, H], ``candidate/bias`` [H]. The computation uses the dtype of
    ``gates_kernel`` (float16, float32 or float64); the other arrays are cast to it.
    Returns hs [T, batch, H] in that dtype.
    """
    dtype = _common_dtype(gates_kernel)
    xs, h0, input_size, units = _check_sequence(xs, h0, dtype)
    values = {
        "gates/kernel": _as_float("gates_kernel", gates_kernel, dtype),
        "gates/bias": _as_float("gates_bias", gates_bias, dtype),
        "candidate/kernel": _as_float("candidate_kernel", candidate_kernel, dtype),
        "candidate/bias": _as_float("candidate_bias", candidate_bias, dtype),
    }
    rows = input_size + units
    _check_shape("gates_kernel", values["gates/kernel"], (rows, 2 * units))
    _check_shape("gates_bias", values["gates/bias"], (2 * units,))
    _check_shape("candidate_kernel", values["candidate/kernel"], (rows, units))
    _check_shape("candidate_bias", values["candidate/bias"], (units,))

    tf = _import_tf()
    cell_class = _gru_cell_class(tf)
    tf_dtype = tf.as_dtype(dtype)

    def build():
        cell = cell_class(units, dtype=tf_dtype)
        cell.build(tf.TensorShape([None, input_size]))
        assigned, setup = set(), []
        for var in cell.variables:
            name = var.name.split(":")[0]
            role = next((r for r in _GRU_CELL_ROLES if name.endswith("/" + r)), None)
            if role is None or role in assigned:
                raise RuntimeError("unexpected GRUCell variable %r" % var.name)
            assigned.add(role)
            setup.append(var.assign(values[role]))
        if assigned != set(_GRU_CELL_ROLES):
            raise RuntimeError("GRUCell did not create %s" % sorted(set(_GRU_CELL_ROLES) - assigned))
        # Eagerly the assignments have already happened; in graph mode _run runs them in a
        # separate session call before the output is computed.
        state = tf.constant(h0)
        outputs = []
        for t in range(xs.shape[0]):
            output, state = cell(tf.constant(xs[t]), state)
            outputs.append(output)
        return setup, tf.stack(outputs)

    return np.asarray(_run(tf, build), dtype=dtype)


def run_gru_block_cell(w_ru, b_ru, w_c, b_c, xs, h0) -> np.ndarray:
    """Run TensorFlow's ``GRUBlockCell`` kernel (``tf.raw_ops.GRUBlockCell``) step by step.

    ``w_ru`` must be the [I+H, 2H] gate kernel and ``w_c`` the [I+H, H] candidate kernel,
    whatever names they had in the checkpoint (one GRUBlockCell release stored them swapped).
    ``b_ru`` is [2H], ``b_c`` [H]. The op has only a float32 kernel, so everything is cast to
    float32 and the result hs [T, batch, H] is float32.
    """
    dtype = np.dtype(np.float32)
    xs, h0, input_size, units = _check_sequence(xs, h0, dtype)
    w_ru = _as_float("w_ru", w_ru, dtype)
    w_c = _as_float("w_c", w_c, dtype)
    b_ru = _as_float("b_ru", b_ru, dtype)
    b_c = _as_float("b_c", b_c, dtype)
    rows = input_size + units
    if w_ru.shape == (rows, units) and w_c.shape == (rows, 2 * units):
        raise ValueError(
            "w_ru must be the [I+H, 2H] gate kernel and w_c the [I+H, H] candidate kernel; "
            "the two look swapped"
        )
    _check_shape("w_ru", w_ru, (rows, 2 * units))
    _check_shape("w_c", w_c, (rows, units))
    _check_shape("b_ru", b_ru, (2 * units,))
    _check_shape("b_c", b_c, (units,))

    tf = _import_tf()

    def build():
        weights = [tf.constant(a) for a in (w_ru, w_c, b_ru, b_c)]
        state = tf.constant(h0)
        outputs = []
        for t in range(xs.shape[0]):
            step = tf.raw_ops.GRUBlockCell(
                x=tf.constant(xs[t]), h_prev=state,
                w_ru=weights[0], w_c=weights[1], b_ru=weights[2], b_c=weights[3],
            )
            state = step.h
            outputs.append(state)
        return [], tf.stack(outputs)

    return np.asarray(_run(tf, build), dtype=dtype)


def cudnn_compatible_gru_cell_reference(
    gates_kernel,
    gates_bias,
    input_projection_kernel,
    input_projection_bias,
    hidden_projection_kernel,
    hidden_projection_bias,
    xs,
    h0,
) -> np.ndarray:
    """NumPy reference for ``CudnnCompatibleGRUCell`` (there is no runnable TensorFlow cell).

    ``tf.contrib.cudnn_rnn.CudnnCompatibleGRUCell`` is gone from every TensorFlow that can be
    installed today, so this applies its equations (:func:`gruinspect.maths.tf1.cudnn_compatible_gru_cell`)
    with the argument checks of the other oracles; it is a reference, not an independent oracle:

        [r | u] = sigmoid([x, h] @ G + gb)
        c       = tanh(x @ Ci + bi + r * (h @ Ch + bh))        # reset applied after the matmul
        h'      = u * h + (1 - u) * c

    with G = ``gates/kernel`` [I+H, 2H], gb = ``gates/bias`` [2H],
    Ci, bi = ``candidate/input_projection/{kernel [I, H], bias [H]}`` and
    Ch, bh = ``candidate/hidden_projection/{kernel [H, H], bias [H]}``.
    Computed in the dtype of ``gates_kernel``; returns hs [T, batch, H].
    """
    dtype = _common_dtype(gates_kernel)
    xs, h0, input_size, units = _check_sequence(xs, h0, dtype)
    g = _as_float("gates_kernel", gates_kernel, dtype)
    gb = _as_float("gates_bias", gates_bias, dtype)
    ci = _as_float("input_projection_kernel", input_projection_kernel, dtype)
    bi = _as_float("input_projection_bias", input_projection_bias, dtype)
    ch = _as_float("hidden_projection_kernel", hidden_projection_kernel, dtype)
    bh = _as_float("hidden_projection_bias", hidden_projection_bias, dtype)
    _check_shape("gates_kernel", g, (input_size + units, 2 * units))
    _check_shape("gates_bias", gb, (2 * units,))
    _check_shape("input_projection_kernel", ci, (input_size, units))
    _check_shape("input_projection_bias", bi, (units,))
    _check_shape("hidden_projection_kernel", ch, (units, units))
    _check_shape("hidden_projection_bias", bh, (units,))

    with np.errstate(over="ignore"):
        return cudnn_compatible_gru_cell(g, gb, ci, bi, ch, bh, xs, h0).astype(dtype, copy=False)


# ------------------------------------------------------------------ verify adapters (LayoutSpec.oracle)


def _biases(cell, t):
    H = cell.units
    return t.get("gates/bias", np.zeros(2 * H)), t.get("candidate/bias", np.zeros(H))


def gru_cell_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """``tf.compat.v1.nn.rnn_cell.GRUCell`` fed the cell's fused tensors."""
    require_default_activations(acts, "tf.compat.v1.nn.rnn_cell.GRUCell")
    compute = compute_dtype(cell.dtype)
    dt = np.dtype(compute)
    gb, cb = _biases(cell, t)
    hs = run_tf_gru_cell(*(np.asarray(a).astype(dt) for a in (t["gates/kernel"], gb, t["candidate/kernel"], cb)),
                         xs.astype(dt), h0.astype(dt))
    return OracleRun(hs, compute, f"tf.compat.v1.nn.rnn_cell.GRUCell ({versions('tensorflow')})",
                     upcast_note(cell, compute))


def gru_block_cell_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """The ``GRUBlockCell`` kernel (``tf.raw_ops``), float32 only."""
    require_default_activations(acts, "tf.raw_ops.GRUBlockCell")
    gb, cb = _biases(cell, t)
    hs = run_gru_block_cell(t["gates/kernel"], gb, t["candidate/kernel"], cb, xs, h0)
    return OracleRun(hs, "float32", f"tf.raw_ops.GRUBlockCell ({versions('tensorflow')})",
                     upcast_note(cell, "float32"))


def cudnn_compatible_oracle(cell, t, xs, h0, acts) -> OracleRun:
    """No framework cell can run: CudnnCompatibleGRUCell's equations in float64, said so plainly."""
    hs = cudnn_compatible_gru_cell_reference(
        *(np.asarray(t[k], dtype=np.float64) for k in (
            "gates/kernel", "gates/bias", "candidate/input_projection/kernel", "candidate/input_projection/bias",
            "candidate/hidden_projection/kernel", "candidate/hidden_projection/bias")),
        np.asarray(xs, np.float64), np.asarray(h0, np.float64))
    return OracleRun(hs, "float64",
                     "the equations of CudnnCompatibleGRUCell (no runnable framework cell: "
                     "tf.contrib.cudnn_rnn is gone from every installable TensorFlow; equations from "
                     "contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py, in numpy via gruinspect.maths.tf1)",
                     ["framework check uses the CudnnCompatibleGRUCell equations: it cannot run "
                      "in any installable TensorFlow"])
