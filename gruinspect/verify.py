"""`verify`: prove the split with numbers, cell by cell, and say which block is wrong when it is.

For every GRU cell (DESIGN.md "Canonical blocks") these checks run:

``refuse``
    Re-fusing the split blocks (:func:`gruinspect.blocks.fuse`) rebuilds every stored tensor bit
    for bit.
``equations``
    The explicit per-gate GRU of :mod:`gruinspect.gru` (float64, from the blocks) matches a numpy
    transcription of the layout's own equations applied to the *fused* tensors (FORMATS.md
    section 6). Needs nothing but numpy.
``framework``
    The same per-gate GRU matches the framework's own cell fed the original fused tensors, built
    with the cell's configuration. The cell is chosen per layout in :data:`FRAMEWORK_ORACLES`.
    Where the original cell cannot run the report says so plainly: a Keras ``CuDNNGRU`` (cuDNN
    needs a GPU) runs as tf-keras's ``GRU(reset_after=True)`` after tf-keras's own CuDNNGRU weight
    conversion (FORMATS.md §6.5); ``CudnnCompatibleGRUCell`` (contrib, in no installable
    TensorFlow) is checked against its FORMATS.md §6.4 equations.

With an exported folder (what :func:`gruinspect.export.split` wrote) three more run per cell:

``export-files``
    Every block the cell has is in the manifest, its file is present, its sha256, dtype, shape and
    source slice match.
``export-blocks``
    Each exported array equals the source slice exactly (bfloat16 after its lossless float32
    conversion).
``export-step``
    The explicit step computed from the exported files matches the framework cell (or, when no
    framework cell ran, the layout's equations).

Every comparison runs a seeded sequence of ``steps`` random inputs from a random state, and
reports the max absolute and max relative error against tolerances chosen by the dtype the
reference computed in (:data:`TOLERANCES`). The library never prints: :func:`verify` returns a
:class:`VerifyReport`, which knows its exit code and renders itself as JSON or JUnit XML.

>>> report = verify("sample_checkpoints/tf1_gru_single/model.ckpt")  # doctest: +SKIP
>>> report.exit_code, [c.status for c in report.cells[0].checks]     # doctest: +SKIP
(0, ['passed', 'passed', 'passed'])
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import sys
import time
import warnings
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from . import gru
from .blocks import extract, fuse, select_cells
from .cell import GruCell
from .errors import ExitCode, GruInspectError, InvalidFileError, MissingDependencyError, UsageError
from .export import MANIFEST
from .inventory import open_cells
from .store import numpy_dtype

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
ORACLE_MODES = ("auto", "framework", "numpy")

# (atol, rtol) by the dtype the reference computed in. A pass needs |a - b| <= atol + rtol * |b|
# everywhere. Measured on 5-step sequences: float32 cells agree with float64 to ~2e-7, float16 to
# ~1e-3 and bfloat16 to ~1e-2; the margins leave room for wide cells without hiding a wrong gate.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-10, 1e-10),
    "float32": (1e-5, 1e-5),
    "float16": (1e-2, 1e-2),
    "bfloat16": (5e-2, 5e-2),
}

# Activations a layout assumes when the file does not say (weights-only Keras files).
_DEFAULT_ACTIVATIONS = {"keras1-gru": ("tanh", "hard_sigmoid_keras2")}
_TF_INSTALL = "pip install 'gruinspect[tf]'"


class OracleUnavailable(ImportError):
    """The framework an oracle needs is not installed (or cannot be imported)."""


# ---------------------------------------------------------------------------------------- report


@dataclass
class Check:
    """One check of one cell (or of the whole file/export when it belongs to no cell)."""

    name: str
    status: str
    message: str
    oracle: str | None = None
    compute_dtype: str | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    atol: float | None = None
    rtol: float | None = None
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != FAILED

    def to_json(self) -> dict:
        out = {"name": self.name, "status": self.status, "message": self.message}
        for key in ("oracle", "compute_dtype", "max_abs", "max_rel", "atol", "rtol"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _json_float(value) if isinstance(value, float) else value
        if self.failures:
            out["failures"] = list(self.failures)
        return out


@dataclass
class CellReport:
    cell: GruCell
    checks: list[Check] = field(default_factory=list)
    activation: str | None = None
    recurrent_activation: str | None = None
    activations_assumed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def status(self) -> str:
        return PASSED if self.ok else FAILED

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict:
        c = self.cell
        return {
            "name": c.name, "layout": c.layout, "input_size": c.input_size, "units": c.units,
            "reset_after": c.reset_after, "dtype": c.dtype, "activation": self.activation,
            "recurrent_activation": self.recurrent_activation, "activations_assumed": self.activations_assumed,
            "status": self.status, "checks": [k.to_json() for k in self.checks], "notes": self.notes,
        }


@dataclass
class VerifyReport:
    """Everything :func:`verify` found; ``exit_code`` is what the command exits with."""

    path: str
    format: str
    oracle: str
    settings: dict
    cells: list[CellReport] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    exported: str | None = None
    allow_empty: bool = False
    frameworks: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def all_checks(self) -> list[tuple[str | None, Check]]:
        """(cell name or None, check) for every check, file-level ones first."""
        return [(None, k) for k in self.checks] + [(c.cell.name, k) for c in self.cells for k in c.checks]

    @property
    def ok(self) -> bool:
        return all(k.ok for _, k in self.all_checks)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.CHECK_FAILED

    def counts(self) -> dict[str, int]:
        out = {PASSED: 0, FAILED: 0, SKIPPED: 0}
        for _, k in self.all_checks:
            out[k.status] += 1
        return out

    def failures(self) -> list[str]:
        """One sentence per failed check, naming the cell and check."""
        out = []
        for cell, k in self.all_checks:
            if k.status == FAILED:
                where = f"{cell}: {k.name}" if cell else k.name
                out.append(f"{where}: {k.message}")
        return out

    def to_json(self) -> dict:
        counts = self.counts()
        return {
            "source": {"path": self.path, "format": self.format},
            "exported": self.exported,
            "status": PASSED if self.ok else FAILED,
            "exit_code": int(self.exit_code),
            "oracle": self.oracle,
            "frameworks": self.frameworks,
            "settings": self.settings,
            "summary": {"cells": len(self.cells), **counts},
            "notes": self.notes,
            "problems": self.problems,
            "checks": [k.to_json() for k in self.checks],
            "cells": [c.to_json() for c in self.cells],
        }

    def to_junit(self) -> str:
        """JUnit XML: one testsuite for PATH, one testcase per cell and check."""
        from xml.etree import ElementTree as ET

        counts = self.counts()
        total = sum(counts.values())
        root = ET.Element("testsuites", name="gruinspect verify", tests=str(total),
                          failures=str(counts[FAILED]), errors="0", skipped=str(counts[SKIPPED]),
                          time=f"{self.seconds:.3f}")
        suite = ET.SubElement(root, "testsuite", name=self.path, tests=str(total), failures=str(counts[FAILED]),
                              errors="0", skipped=str(counts[SKIPPED]), time=f"{self.seconds:.3f}",
                              timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                              hostname=_hostname())
        props = ET.SubElement(suite, "properties")
        properties = {"format": self.format, "oracle": self.oracle,
                      **{k: str(v) for k, v in self.settings.items() if v is not None}, **self.frameworks}
        if self.exported:
            properties["exported"] = self.exported
        for name, value in properties.items():
            ET.SubElement(props, "property", name=str(name), value=str(value))
        for cell, k in self.all_checks:
            case = ET.SubElement(suite, "testcase", classname=cell or self.path, name=k.name,
                                 time=f"{k.seconds:.3f}")
            if k.status == FAILED:
                failure = ET.SubElement(case, "failure", message=k.message, type=k.name)
                failure.text = "\n".join([k.message, *k.failures])
            elif k.status == SKIPPED:
                ET.SubElement(case, "skipped", message=k.message)
            else:
                ET.SubElement(case, "system-out").text = k.message
        if self.notes or self.problems:
            ET.SubElement(suite, "system-err").text = "\n".join(self.notes + self.problems)
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return "localhost"


def _json_float(value: float) -> float | None:
    return value if np.isfinite(value) else None


# ----------------------------------------------------------------------------------- comparison


@dataclass
class _Comparison:
    ok: bool
    max_abs: float
    max_rel: float
    worst: tuple[int, ...]


def _compare(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> _Comparison:
    """Elementwise ``|actual - expected| <= atol + rtol * |expected|``, NaN equal to NaN.

    ``max_rel`` is taken over the values of magnitude at least ``max(atol, 1e-3)`` only: near zero
    a relative error says nothing (GRU states lie in [-1, 1]).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - e))
        diff = np.where(np.isnan(diff), np.inf, diff)
        allowed = atol + rtol * np.abs(np.where(np.isfinite(e), e, 0.0))
        excess = diff - allowed
        big = np.abs(e) >= max(atol, 1e-3)
        rel = diff[big] / np.abs(e[big]) if big.any() else np.zeros(1)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape)) if excess.size else ()
    return _Comparison(bool((excess <= 0).all()), float(diff.max(initial=0.0)),
                       float(np.nan_to_num(rel, nan=np.inf).max(initial=0.0)), worst)


def _tolerance(dtype: str, atol: float | None, rtol: float | None) -> tuple[float, float]:
    default_atol, default_rtol = TOLERANCES.get(dtype, TOLERANCES["float32"])
    return (default_atol if atol is None else atol), (default_rtol if rtol is None else rtol)


def _numeric_check(name: str, explicit: np.ndarray, reference: np.ndarray, *, what: str, oracle: str,
                   compute_dtype: str, atol: float, rtol: float) -> Check:
    cmp = _compare(explicit, reference, atol, rtol)
    check = Check(name, PASSED if cmp.ok else FAILED, "", oracle=oracle, compute_dtype=compute_dtype,
                  max_abs=cmp.max_abs, max_rel=cmp.max_rel, atol=atol, rtol=rtol)
    if cmp.ok:
        check.message = f"{what} matches {oracle}: max abs error {cmp.max_abs:.3g}"
    else:
        t, b, u = cmp.worst
        check.message = (f"{what} differs from {oracle} by up to {cmp.max_abs:.3g} (step {t}, batch row {b}, "
                         f"unit {u}); tolerance atol {atol:g}, rtol {rtol:g} for {compute_dtype}")
    return check


# ------------------------------------------------------------------------- fused-tensor equations
# Each takes the cell, its stored tensors by layout role (float64) and the float64 inputs, and
# returns every state [T, batch, H]. They never look at the cell's blocks: they are a second,
# independent reading of the layout, written from FORMATS.md section 6.


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def tf_gru_cell_equations(G, gb, C, cb, xs, h0, *, activation="tanh", recurrent_activation="sigmoid"):
    """FORMATS.md §6.2 (rnn_cell_impl.py GRUCell.call) on the fused tensors, every state [T, batch, H].

    [r | u] = act_r([x, h] G + gb); c = act([x, r * h] C + cb); h' = u * h + (1 - u) * c.
    """
    act, act_r = gru.activation(activation), gru.activation(recurrent_activation)
    H = h0.shape[1]
    h, out = h0, []
    for x in xs:
        ru = act_r(np.concatenate([x, h], 1) @ G + gb)
        r, u = ru[:, :H], ru[:, H:]
        c = act(np.concatenate([x, r * h], 1) @ C + cb)
        h = u * h + (1 - u) * c
        out.append(h)
    return np.stack(out)


def _tf_gru_cell_equations(cell, t, xs, h0, acts):
    H = cell.units
    return tf_gru_cell_equations(t["gates/kernel"], t.get("gates/bias", np.zeros(2 * H)), t["candidate/kernel"],
                                 t.get("candidate/bias", np.zeros(H)), xs, h0,
                                 activation=acts[0], recurrent_activation=acts[1])


def _cudnn_compatible_equations(cell, t, xs, h0, acts):
    """FORMATS.md §6.4 (contrib cudnn_rnn_ops.py CudnnCompatibleGRUCell): c = tanh(x Ci + bi + r (h Ch + bh))."""
    act, act_r = gru.activation(acts[0]), gru.activation(acts[1])
    H = cell.units
    G, gb = t["gates/kernel"], t["gates/bias"]
    Ci, bi = t["candidate/input_projection/kernel"], t["candidate/input_projection/bias"]
    Ch, bh = t["candidate/hidden_projection/kernel"], t["candidate/hidden_projection/bias"]
    h, out = h0, []
    for x in xs:
        ru = act_r(np.concatenate([x, h], 1) @ G + gb)
        r, u = ru[:, :H], ru[:, H:]
        c = act(x @ Ci + bi + r * (h @ Ch + bh))
        h = u * h + (1 - u) * c
        out.append(h)
    return np.stack(out)


def _keras_equations(cell, t, xs, h0, acts):
    """FORMATS.md §6.1 (Keras GRUCell.call): columns z | r | h; bias [3H], or [2, 3H] = input, recurrent."""
    act, act_r = gru.activation(acts[0]), gru.activation(acts[1])
    K, U, b = _keras_weights(cell, t)
    H = cell.units
    bi = br = np.zeros(3 * H)
    if b is not None and b.ndim == 2:
        bi, br = b[0], b[1]
    elif b is not None:
        bi = b
    h, out = h0, []
    for x in xs:
        xz = x @ K + bi
        if cell.reset_after:
            hz = h @ U + br
            z = act_r(xz[:, :H] + hz[:, :H])
            r = act_r(xz[:, H:2 * H] + hz[:, H:2 * H])
            hh = act(xz[:, 2 * H:] + r * hz[:, 2 * H:])
        else:
            z = act_r(xz[:, :H] + h @ U[:, :H])
            r = act_r(xz[:, H:2 * H] + h @ U[:, H:2 * H])
            hh = act(xz[:, 2 * H:] + (r * h) @ U[:, 2 * H:])
        h = z * h + (1 - z) * hh
        out.append(h)
    return np.stack(out)


_KERAS1_ORDER = ("W_z", "U_z", "b_z", "W_r", "U_r", "b_r", "W_h", "U_h", "b_h")


def _keras_weights(cell, t):
    """(kernel [I, 3H], recurrent_kernel [H, 3H], bias or None) in Keras 2 layout, from any Keras layout."""
    H, I = cell.units, cell.input_size
    if "kernel" not in t and all(k in t for k in ("W_z", "W_r", "W_h")):
        # Keras 1 saved nine arrays, z then r then h (FORMATS.md §4).
        K = np.concatenate([t["W_z"], t["W_r"], t["W_h"]], axis=-1)
        U = np.concatenate([t["U_z"], t["U_r"], t["U_h"]], axis=-1)
        b = np.concatenate([t["b_z"], t["b_r"], t["b_h"]]) if "b_z" in t else None
        return K, U, b
    K, U, b = t["kernel"], t["recurrent_kernel"], t.get("bias")
    if cell.layout == "keras-cudnn-gru":
        # FORMATS.md §6.5: each flattened gate block is read by cuDNN as [H, I] row-major, the
        # recurrent blocks are transposed, and bias = input biases ‖ recurrent biases.
        K = np.concatenate([K[:, g * H:(g + 1) * H].reshape(H, I).T for g in range(3)], axis=1)
        U = np.concatenate([U[:, g * H:(g + 1) * H].T for g in range(3)], axis=1)
        b = None if b is None else b.reshape(2, 3 * H)
    return K, U, b


@dataclass(frozen=True)
class Equations:
    run: Callable
    citation: str


EQUATIONS: dict[str, Equations] = {
    "tf-gru-cell": Equations(_tf_gru_cell_equations, "FORMATS.md §6.2 (TF1 GRUCell)"),
    "tf-gru-block-cell": Equations(_tf_gru_cell_equations, "FORMATS.md §6.3 = §6.2 (GRUBlockCell)"),
    "tf-cudnn-compatible-gru-cell": Equations(_cudnn_compatible_equations, "FORMATS.md §6.4 (CudnnCompatibleGRUCell)"),
    "keras-gru": Equations(_keras_equations, "FORMATS.md §6.1 (Keras GRU)"),
    "keras-cudnn-gru": Equations(_keras_equations, "FORMATS.md §6.5 + §6.1 (Keras CuDNNGRU)"),
    "keras1-gru": Equations(_keras_equations, "FORMATS.md §4 + §6.1 (Keras 1 GRU)"),
}


# --------------------------------------------------------------------------- framework oracles


@dataclass
class OracleRun:
    hs: np.ndarray
    compute_dtype: str
    description: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Oracle:
    """A layout's framework oracle: ``run(cell, tensors, xs, h0, acts) -> OracleRun``.

    ``needs`` lists the modules it imports (checked up front, without importing them); it is
    empty for layouts whose framework cell cannot run anywhere today, whose ``run`` then applies
    the FORMATS.md equations and says so in its description.
    """

    run: Callable[..., OracleRun]
    needs: tuple[str, ...]


def _compute_dtype(dtype: str, supported=("float16", "float32", "float64")) -> str:
    return dtype if dtype in supported else "float32"


def _upcast_note(cell, compute):
    if compute == cell.dtype:
        return []
    how = "exactly" if np.dtype(numpy_dtype(cell.dtype)).itemsize < np.dtype(compute).itemsize else "rounded"
    return [f"the framework cell has no {cell.dtype} kernel: the {cell.dtype} weights run in {compute} "
            f"(converted {how})"]


def _tf_gru_cell_oracle(cell, t, xs, h0, acts):
    from .oracle import tf1

    _require_default_activations(cell, acts, "tf.compat.v1.nn.rnn_cell.GRUCell")
    compute = _compute_dtype(cell.dtype)
    dt = numpy_dtype(compute)
    H = cell.units
    gb = t.get("gates/bias", np.zeros(2 * H))
    cb = t.get("candidate/bias", np.zeros(H))
    hs = tf1.run_tf_gru_cell(*(np.asarray(a).astype(dt) for a in (t["gates/kernel"], gb, t["candidate/kernel"], cb)),
                             xs.astype(dt), h0.astype(dt))
    return OracleRun(hs, compute, f"tf.compat.v1.nn.rnn_cell.GRUCell ({_versions('tensorflow')})",
                     _upcast_note(cell, compute))


def _gru_block_cell_oracle(cell, t, xs, h0, acts):
    from .oracle import tf1

    _require_default_activations(cell, acts, "tf.raw_ops.GRUBlockCell")
    H = cell.units
    gb = t.get("gates/bias", np.zeros(2 * H))
    cb = t.get("candidate/bias", np.zeros(H))
    hs = tf1.run_gru_block_cell(t["gates/kernel"], gb, t["candidate/kernel"], cb, xs, h0)
    return OracleRun(hs, "float32", f"tf.raw_ops.GRUBlockCell ({_versions('tensorflow')})",
                     _upcast_note(cell, "float32"))


def _cudnn_compatible_oracle(cell, t, xs, h0, acts):
    from .oracle import tf1

    hs = tf1.cudnn_compatible_gru_cell_reference(
        *(np.asarray(t[k], dtype=np.float64) for k in (
            "gates/kernel", "gates/bias", "candidate/input_projection/kernel", "candidate/input_projection/bias",
            "candidate/hidden_projection/kernel", "candidate/hidden_projection/bias")),
        np.asarray(xs, np.float64), np.asarray(h0, np.float64))
    return OracleRun(hs, "float64",
                     "the FORMATS.md §6.4 equations of CudnnCompatibleGRUCell (no runnable framework cell: "
                     "tf.contrib.cudnn_rnn is gone from every installable TensorFlow; equations from "
                     "contrib/cudnn_rnn/python/ops/cudnn_rnn_ops.py, in numpy via gruinspect.oracle.tf1)",
                     ["framework check uses the FORMATS.md §6.4 equations: CudnnCompatibleGRUCell cannot run "
                      "in any installable TensorFlow"])


def _keras_generation(cell) -> str:
    config = cell.config or {}
    for key in ("keras_generation", "generation", "keras"):
        value = config.get(key)
        if isinstance(value, str) and value.startswith("keras"):
            return value
    version = str(config.get("keras_version") or "")
    if version[:1].isdigit():
        return "keras" + version[0] if version[0] in "123" else "keras3"
    return "keras1" if cell.layout == "keras1-gru" else "keras2"


def _framework_activation(name: str) -> str:
    # Keras stores "hard_sigmoid" in both generations; the generation that runs decides the formula.
    return name.split("_keras", 1)[0] if name.startswith("hard_sigmoid_keras") else name


def _use_bias(cell, t) -> bool:
    return bool(cell.config.get("use_bias", True)) and ("bias" in t or "b_z" in t)


def _keras_oracle(cell, t, xs, h0, acts):
    from .oracle import keras as keras_oracle

    act, act_r = (_framework_activation(a) for a in acts)
    generation = _keras_generation(cell)
    use_bias = _use_bias(cell, t)
    if generation == "keras3":
        compute = _compute_dtype(cell.dtype, ("float16", "bfloat16", "float32", "float64"))
        hs = keras_oracle.run_keras3_gru_cell(
            t["kernel"], t["recurrent_kernel"], t.get("bias"), xs, h0, units=cell.units,
            reset_after=cell.reset_after, activation=act, recurrent_activation=act_r, use_bias=use_bias,
            dtype=compute)
        return OracleRun(hs, compute, f"keras.layers.GRUCell ({_versions('keras')}, "
                                      f"{_keras3_backend()} backend)", [])
    compute = _compute_dtype(cell.dtype, ("float16", "bfloat16", "float32", "float64"))
    if cell.layout == "keras-cudnn-gru":
        weights = [t["kernel"], t["recurrent_kernel"], t["bias"]]
        hs = keras_oracle.run_tf_keras_gru_cell(weights, xs, h0, units=cell.units, reset_after=True,
                                                activation="tanh", recurrent_activation="sigmoid", dtype=compute)
        return OracleRun(hs, compute,
                         f"tf_keras GRUCell(reset_after=True) fed the CuDNNGRU weights through tf-keras's own "
                         f"converter (hdf5_format._convert_rnn_weights, the FORMATS.md §6.5 rule) "
                         f"({_versions('tf_keras')})",
                         ["cuDNN cannot run on this machine: the framework check runs tf-keras's GRU("
                          "reset_after=True), into which tf-keras itself loads CuDNNGRU weights (FORMATS.md §6.5)"])
    if "kernel" not in t:  # Keras 1's nine arrays: tf-keras's loader concatenates them
        weights = [t[k] for k in _KERAS1_ORDER if k in t]
        version = "1"
    else:
        weights = [t["kernel"], t["recurrent_kernel"]] + ([t["bias"]] if "bias" in t else [])
        version = "1" if generation == "keras1" else None
    hs = keras_oracle.run_tf_keras_gru_cell(
        weights, xs, h0, units=cell.units, reset_after=cell.reset_after, activation=act,
        recurrent_activation=act_r, use_bias=use_bias, dtype=compute, original_keras_version=version)
    what = "tf_keras GRUCell" + (" after tf-keras's Keras 1 weight conversion" if version == "1" else "")
    notes = []
    if not any(cell.config.get(k) for k in ("keras_generation", "keras_version")):
        notes.append("the file does not say which Keras wrote this cell: the framework check runs tf-keras's "
                     "GRUCell (Keras 2 and 3 differ only in hard_sigmoid)")
    return OracleRun(hs, compute, f"{what} ({_versions('tf_keras')})", notes)


def _keras3_backend() -> str:
    keras = sys.modules.get("keras")
    try:
        return keras.backend.backend() if keras else "?"
    except Exception:  # pragma: no cover
        return "?"


def _require_default_activations(cell, acts, what):
    if tuple(acts) != ("tanh", "sigmoid"):
        raise _NotExpressible(f"{what} has fixed sigmoid/tanh activations; the cell uses {acts[1]}/{acts[0]}")


class _NotExpressible(Exception):
    pass


def _versions(*modules: str) -> str:
    names = {"tensorflow": "TensorFlow", "tf_keras": "tf-keras", "keras": "Keras"}
    parts = []
    for m in modules:
        mod = sys.modules.get(m)
        version = getattr(mod, "__version__", None)
        if version:
            parts.append(f"{names.get(m, m)} {version}")
    return ", ".join(parts) or "version unknown"


FRAMEWORK_ORACLES: dict[str, Oracle] = {
    "tf-gru-cell": Oracle(_tf_gru_cell_oracle, ("tensorflow",)),
    "tf-gru-block-cell": Oracle(_gru_block_cell_oracle, ("tensorflow",)),
    "tf-cudnn-compatible-gru-cell": Oracle(_cudnn_compatible_oracle, ()),
    "keras-gru": Oracle(_keras_oracle, ("tensorflow", "tf_keras")),
    "keras-cudnn-gru": Oracle(_keras_oracle, ("tensorflow", "tf_keras")),
    "keras1-gru": Oracle(_keras_oracle, ("tensorflow", "tf_keras")),
}


def _oracle_needs(cell: GruCell) -> tuple[str, ...]:
    oracle = FRAMEWORK_ORACLES.get(cell.layout)
    if oracle is None:
        return ()
    if cell.layout == "keras-gru" and _keras_generation(cell) == "keras3":
        return ("keras",)  # any Keras 3 backend will do
    return oracle.needs


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _missing_sentence(missing: set[str]) -> str:
    if "tensorflow" in missing:
        return f"TensorFlow is not installed ({_TF_INSTALL})"
    names = {"tf_keras": "tf-keras", "keras": "Keras 3"}
    return " and ".join(names.get(m, m) for m in sorted(missing)) + f" not installed ({_TF_INSTALL})"


# ---------------------------------------------------------------------------------- the checks


def _inputs(cell: GruCell, seed: int, index: int, steps: int, batch: int):
    """Seeded random inputs and initial state, exactly representable in the cell's dtype."""
    rng = np.random.default_rng([seed, index])
    dt = numpy_dtype(cell.dtype)
    xs = rng.normal(size=(steps, batch, cell.input_size)).astype(dt)
    h0 = rng.uniform(-1.0, 1.0, size=(batch, cell.units)).astype(dt)
    return xs, h0


def _activations(cell: GruCell) -> tuple[tuple[str, str], bool]:
    if cell.activation is not None and cell.recurrent_activation is not None:
        return (cell.activation, cell.recurrent_activation), False
    default = _DEFAULT_ACTIVATIONS.get(cell.layout, ("tanh", "sigmoid"))
    return (cell.activation or default[0], cell.recurrent_activation or default[1]), True


def _refuse_check(cell: GruCell, blocks, stored: dict[str, np.ndarray]) -> Check:
    try:
        rebuilt = fuse(cell, blocks)
    except GruInspectError as exc:
        return Check("refuse", FAILED, str(exc))
    failures = []
    for name, original in stored.items():
        again = rebuilt.get(name)
        if again is None:
            failures.append(f"{name} is not rebuilt by any block")
        elif again.dtype != original.dtype or again.shape != original.shape:
            failures.append(f"{name} rebuilt as {again.dtype} {list(again.shape)}, stored as "
                            f"{original.dtype} {list(original.shape)}")
        elif again.tobytes() != original.tobytes():
            failures.append(f"{name} rebuilt differs from the stored tensor in {_differing(again, original)} of "
                            f"{again.size} values")
    if failures:
        return Check("refuse", FAILED, failures[0] + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""),
                     failures=failures)
    n = len(stored)
    return Check("refuse", PASSED, f"re-fusing {len(blocks)} blocks rebuilds {n} stored tensor{'s' if n != 1 else ''} "
                                   f"bit for bit")


def _differing(a: np.ndarray, b: np.ndarray) -> int:
    """How many elements of two same-shape, same-dtype arrays differ in their bytes."""
    if a.size == 0:
        return 0
    a_bytes = np.ascontiguousarray(a).view(np.uint8).reshape(a.size, -1)
    b_bytes = np.ascontiguousarray(b).view(np.uint8).reshape(b.size, -1)
    return int(np.count_nonzero((a_bytes != b_bytes).any(axis=1)))


def _timed(fn, *args, **kwargs) -> Check:
    start = time.perf_counter()
    check = fn(*args, **kwargs)
    check.seconds = time.perf_counter() - start
    return check


def verify(path: str, *, exported: str | None = None, patterns=None, oracle: str = "auto", steps: int = 5,
           batch: int = 3, seed: int = 0, atol: float | None = None, rtol: float | None = None,
           allow_empty: bool = False, progress=None, adjust: Callable[[GruCell], None] | None = None
           ) -> VerifyReport:
    """Verify every GRU cell in PATH (and the split output in ``exported``); never prints.

    ``oracle``: ``auto`` runs the framework cell when its framework is installed and skips the
    check otherwise; ``framework`` makes it mandatory (:class:`MissingDependencyError` when the
    framework is missing); ``numpy`` runs only the bit-exact and numpy checks. ``atol``/``rtol``
    replace the per-dtype :data:`TOLERANCES`. ``adjust(cell)`` may edit each cell before it is
    checked (used to show that a wrong convention is caught). ``progress(done, total)`` is called
    after each cell.

    Raises :class:`GruInspectError` subclasses for unreadable input or bad usage (exit 2).
    """
    options = dict(exported=exported, patterns=patterns, oracle=oracle, steps=steps, batch=batch, seed=seed,
                   atol=atol, rtol=rtol, allow_empty=allow_empty, progress=progress, adjust=adjust)
    _check_options(options)
    with open_cells(path) as (store, inventory):
        return _verify_inventory(store, inventory, **options)


def verify_store(store, **options) -> VerifyReport:
    """:func:`verify` on an already open :class:`~gruinspect.store.TensorStore` (for instance a
    :class:`~gruinspect.store.MemoryStore` of weights you hold); same options."""
    from .inventory import Inventory
    from .layouts import find_cells

    _check_options(options)
    discovery = find_cells(store)
    inventory = Inventory(path=store.path, format=store.format, cells=discovery.cells, problems=discovery.problems)
    return _verify_inventory(store, inventory, **options)


def _check_options(options: dict) -> None:
    if options.get("oracle", "auto") not in ORACLE_MODES:
        raise UsageError(f"Unsupported oracle {options['oracle']!r}; use one of {', '.join(ORACLE_MODES)}.")
    if options.get("steps", 5) < 1 or options.get("batch", 3) < 1:
        raise UsageError("--steps and --batch must be at least 1.")
    for name in ("atol", "rtol"):
        value = options.get(name)
        if value is not None and not (value >= 0 and np.isfinite(value)):
            raise UsageError(f"--{name} must be a finite number >= 0, not {value}.")


def _verify_inventory(store, inventory, *, exported=None, patterns=None, oracle="auto", steps=5, batch=3, seed=0,
                      atol=None, rtol=None, allow_empty=False, progress=None, adjust=None) -> VerifyReport:
    manifest = _read_manifest(exported) if exported is not None else None
    start = time.perf_counter()
    path = inventory.path
    cells = select_cells(inventory.cells, patterns)
    for cell in cells:
        if adjust is not None:
            adjust(cell)
    report = VerifyReport(path=path, format=inventory.format, oracle=oracle, exported=exported,
                          allow_empty=allow_empty, problems=list(inventory.problems),
                          settings={"steps": steps, "batch": batch, "seed": seed, "atol": atol, "rtol": rtol})
    run_framework = _plan_framework(report, cells, oracle)
    if not cells:
        status = PASSED if allow_empty else FAILED
        report.checks.append(Check("cells", status, f"No GRU cell found in {path}."
                                   + (" (--allow-empty)" if allow_empty else "")))
    else:
        n = len(cells)
        report.checks.append(Check("cells", PASSED, f"{n} GRU cell{'s' if n != 1 else ''} found"))
    keys = _cell_keys(inventory.cells)
    for index, cell in enumerate(cells):
        entry = manifest.cells.get(keys[id(cell)]) if manifest is not None else None
        report.cells.append(_verify_cell(store, cell, index, report, run_framework, steps=steps, batch=batch,
                                         seed=seed, atol=atol, rtol=rtol, manifest=manifest, entry=entry))
        if progress:
            progress(index + 1, len(cells))
    if manifest is not None:
        report.checks[:0] = _export_file_checks(manifest, [keys[id(c)] for c in inventory.cells])
    report.frameworks = {m: getattr(sys.modules[m], "__version__", "?")
                         for m in ("tensorflow", "tf_keras", "keras") if sys.modules.get(m) is not None}
    report.seconds = time.perf_counter() - start
    return report


def _cell_keys(cells: list[GruCell]) -> dict[int, tuple[str, int]]:
    """(name, occurrence) per cell: the k-th cell named N matches the k-th manifest entry named N."""
    seen: dict[str, int] = {}
    out = {}
    for cell in cells:
        out[id(cell)] = (cell.name, seen.get(cell.name, 0))
        seen[cell.name] = seen.get(cell.name, 0) + 1
    return out


def _plan_framework(report: VerifyReport, cells: list[GruCell], oracle: str) -> Callable[[GruCell], str | None]:
    """Decide up front which cells get a framework run; returns cell -> reason to skip (or None)."""
    if oracle == "numpy":
        return lambda cell: "not requested (--oracle numpy)"
    missing: dict[int, set[str]] = {}
    for cell in cells:
        absent = {m for m in _oracle_needs(cell) if not _module_available(m)}
        if absent:
            missing[id(cell)] = absent
    if missing:
        sentence = _missing_sentence(set().union(*missing.values()))
        names = [c.name for c in cells if id(c) in missing]
        if oracle == "framework":
            listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise MissingDependencyError(f"{sentence}, and --oracle framework needs it to verify {listed}.")
        n = len(names)
        report.notes.append(f"{sentence}: the framework check is skipped for {n} cell{'s' if n != 1 else ''}; "
                            f"the bit-exact and numpy checks still run.")
    return lambda cell: _missing_sentence(missing[id(cell)]) if id(cell) in missing else None


def _verify_cell(store, cell: GruCell, index: int, report: VerifyReport, skip_reason, *, steps, batch, seed,
                 atol, rtol, manifest, entry) -> CellReport:
    acts, assumed = _activations(cell)
    cr = CellReport(cell, activation=acts[0], recurrent_activation=acts[1], activations_assumed=assumed,
                    notes=list(cell.notes))
    if assumed:
        cr.notes.append(f"activations unknown (the file does not store them); assumed {acts[1]}/{acts[0]}")
    stored = {name: store.read(name) for name in dict.fromkeys(cell.tensors.values())}
    blocks = {(b.gate, b.role): extract(b, stored[b.source.tensor]) for b in cell.blocks}
    cr.checks.append(_timed(_refuse_check, cell, blocks, stored))

    xs, h0 = _inputs(cell, seed, index, steps, batch)
    xs64, h064 = xs.astype(np.float64), h0.astype(np.float64)
    t64 = {role: np.asarray(stored[name], dtype=np.float64) for role, name in cell.tensors.items()}
    explicit = None
    try:
        explicit = gru.run(blocks, xs64, h064, reset_after=cell.reset_after, activation_name=acts[0],
                           recurrent_activation_name=acts[1])
    except GruInspectError as exc:
        cr.checks.append(Check("equations", FAILED, f"the explicit GRU cannot run: {exc}"))

    if explicit is not None:
        cr.checks.append(_timed(_equations_check, cell, t64, xs64, h064, acts, explicit, atol, rtol))
    framework_run: OracleRun | None = None
    if explicit is not None:
        start = time.perf_counter()
        check, framework_run, note = _framework_check(cell, stored, xs, h0, acts, explicit, skip_reason(cell),
                                                report.oracle, atol, rtol)
        check.seconds = time.perf_counter() - start
        cr.checks.append(check)
        if note and note not in report.notes:
            report.notes.append(note)
        if framework_run is not None:
            cr.notes += [n for n in framework_run.notes if n not in cr.notes]
    if manifest is not None:
        cr.checks += _export_cell_checks(cell, blocks, manifest, entry, acts, xs64, h064, t64, framework_run,
                                         atol, rtol)
    return cr


def _equations_check(cell, t64, xs64, h064, acts, explicit, atol, rtol) -> Check:
    eq = EQUATIONS.get(cell.layout)
    if eq is None:
        return Check("equations", SKIPPED, f"no reference equations for layout {cell.layout}")
    try:
        reference = eq.run(cell, t64, xs64, h064, acts)
    except Exception as exc:  # a malformed cell must not stop the other checks
        return Check("equations", FAILED, f"the {eq.citation} equations cannot run on the stored tensors: {exc}")
    a, r = _tolerance("float64", atol, rtol)
    return _numeric_check("equations", explicit, reference, what="the per-gate GRU from the blocks",
                          oracle=f"the {eq.citation} equations on the fused tensors", compute_dtype="float64",
                          atol=a, rtol=r)


@contextmanager
def _quiet_stderr():
    """Silence file descriptor 2: TensorFlow's C++ start-up logs ignore TF_CPP_MIN_LOG_LEVEL."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # pragma: no cover - no usable fd 2
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _import_quietly(modules: tuple[str, ...]) -> None:
    """Import an oracle's frameworks once, without their start-up noise (TF first, as tf1 wants it)."""
    todo = [m for m in modules if m not in sys.modules]
    if not todo:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "tensorflow" in todo:
            from .oracle.tf1 import _import_tf

            _import_tf()
        for module in todo:
            if module != "tensorflow":
                importlib.import_module(module)


def _framework_check(cell, stored, xs, h0, acts, explicit, skip_reason, mode, atol, rtol):
    oracle = FRAMEWORK_ORACLES.get(cell.layout)
    if oracle is None:
        status = FAILED if mode == "framework" else SKIPPED
        return Check("framework", status, f"no framework oracle for layout {cell.layout}"), None, None
    if skip_reason:
        return Check("framework", SKIPPED, f"skipped: {skip_reason}"), None, None
    t = {role: stored[name] for role, name in cell.tensors.items()}
    try:
        _import_quietly(_oracle_needs(cell))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notices of the legacy cells
            run = oracle.run(cell, t, xs, h0, acts)
    except _NotExpressible as exc:
        status = FAILED if mode == "framework" else SKIPPED
        return Check("framework", status, f"the framework cell cannot express this cell: {exc}"), None, None
    except ImportError as exc:
        if mode == "framework":
            raise MissingDependencyError(f"{exc} (needed by --oracle framework for {cell.name}).") from exc
        note = f"{exc} The framework check is skipped; the bit-exact and numpy checks still run."
        return Check("framework", SKIPPED, f"skipped: {exc}"), None, note
    except Exception as exc:  # the framework refused the weights or the configuration
        return Check("framework", FAILED, f"the framework cell could not run: {type(exc).__name__}: "
                                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"), None, None
    a, r = _tolerance(run.compute_dtype, atol, rtol)
    check = _numeric_check("framework", explicit, run.hs, what="the per-gate GRU from the blocks",
                           oracle=run.description, compute_dtype=run.compute_dtype, atol=a, rtol=r)
    return check, run, None


# ------------------------------------------------------------------------------- export checks


@dataclass
class _Manifest:
    folder: str
    data: dict
    cells: dict[tuple[str, int], dict]  # (name, occurrence) -> entry


def _read_manifest(folder: str) -> _Manifest:
    if not os.path.isdir(folder):
        raise UsageError(f"No such folder: {folder} (--exported must be a folder written by gruinspect split).")
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise InvalidFileError(f"Invalid export {folder}: it has no {MANIFEST}; "
                               f"--exported must be a folder written by gruinspect split.")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidFileError(f"Invalid manifest {path}: {exc}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("arrays"), list)
            for c in data["cells"]):
        raise InvalidFileError(f"Invalid manifest {path}: it needs a \"cells\" list whose entries have a name "
                               f"and an \"arrays\" list.")
    cells: dict[tuple[str, int], dict] = {}
    seen: dict[str, int] = {}
    for entry in data["cells"]:
        n = seen.get(entry["name"], 0)
        seen[entry["name"]] = n + 1
        cells[(entry["name"], n)] = entry
    return _Manifest(folder, data, cells)


def _referenced_files(manifest: _Manifest) -> set[str]:
    out = {MANIFEST}
    for entry in manifest.cells.values():
        if isinstance(entry.get("file"), str):
            out.add(entry["file"])
        for rec in entry["arrays"]:
            if not isinstance(rec, dict):
                continue
            for key in ("file", "alias_file"):
                if isinstance(rec.get(key), str):
                    out.add(rec[key])
    return {os.path.normpath(p) for p in out}


def _export_file_checks(manifest: _Manifest, source_keys: list[tuple[str, int]]) -> list[Check]:
    """File-level export checks: manifest cells that PATH does not hold, and files nobody listed."""
    checks = []
    known = set(source_keys)
    unknown = [name if n == 0 else f"{name} (#{n + 1})" for name, n in manifest.cells if (name, n) not in known]
    if unknown:
        checks.append(Check("export-cells", FAILED,
                            f"the manifest lists cell{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}, "
                            f"which the source does not hold", failures=[f"{n}: not in the source" for n in unknown]))
    else:
        n = len(manifest.cells)
        checks.append(Check("export-cells", PASSED, f"every manifest cell is in the source ({n} cell"
                                                    f"{'s' if n != 1 else ''})"))
    referenced = _referenced_files(manifest)
    extra = []
    for root, dirs, files in os.walk(manifest.folder):
        dirs.sort()
        for name in sorted(files):
            rel = os.path.normpath(os.path.relpath(os.path.join(root, name), manifest.folder))
            if rel not in referenced:
                extra.append(rel.replace(os.sep, "/"))
    if extra:
        checks.append(Check("export-extra-files", FAILED,
                            f"{len(extra)} file{'s' if len(extra) > 1 else ''} not in the manifest: "
                            f"{', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}",
                            failures=[f"extra file {p}" for p in extra]))
    else:
        checks.append(Check("export-extra-files", PASSED, "no file outside the manifest"))
    return checks


def _safe_join(folder: str, rel: str) -> str | None:
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in rel.replace("\\", "/").split("/"):
        return None
    return os.path.join(folder, rel)


def _load_exported(folder: str, rec: dict) -> tuple[bytes | None, np.ndarray | None, str | None]:
    """(raw bytes, array, problem) for one manifest record."""
    path = _safe_join(folder, rec.get("file"))
    if path is None:
        return None, None, f"its file {rec.get('file')!r} is not a path inside the export"
    member = rec.get("member")
    try:
        if member is not None:
            if not os.path.isfile(path):
                return None, None, f"{rec['file']} is missing"
            with zipfile.ZipFile(path) as zf:
                try:
                    raw = zf.read(member)
                except KeyError:
                    return None, None, f"{rec['file']} has no member {member}"
        else:
            if not os.path.isfile(path):
                return None, None, f"{rec['file']} is missing"
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, zipfile.BadZipFile) as exc:
        return None, None, f"{rec['file']} cannot be read: {exc}"
    import io

    try:
        array = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # any malformed .npy
        return raw, None, f"{_where(rec)} is not a readable .npy array: {exc}"
    return raw, array, None


def _where(rec: dict) -> str:
    return f"{rec.get('file')}:{rec['member']}" if rec.get("member") else str(rec.get("file"))


def _written_dtype(cell: GruCell) -> np.dtype:
    # export._as_written: bfloat16 blocks are written as float32 (lossless).
    return np.dtype(np.float32) if cell.dtype == "bfloat16" else numpy_dtype(cell.dtype)


def _export_cell_checks(cell: GruCell, blocks, manifest: _Manifest, entry: dict | None, acts, xs64, h064, t64,
                        framework_run: OracleRun | None, atol, rtol) -> list[Check]:
    if entry is None:
        msg = "not in the export (split with --cell?)"
        return [Check(name, SKIPPED, msg) for name in ("export-files", "export-blocks", "export-step")]
    start = time.perf_counter()
    file_failures: list[str] = []
    for key in ("layout", "input_size", "units", "reset_after", "dtype"):
        if key in entry and entry[key] != getattr(cell, key):
            file_failures.append(f"the manifest says {key} {entry[key]!r}, the source cell has {getattr(cell, key)!r}")
    expected_dtype = _written_dtype(cell)
    records: dict[tuple[str, str], dict] = {}
    for rec in entry["arrays"]:
        if not isinstance(rec, dict) or not isinstance(rec.get("gate"), str) or not isinstance(rec.get("role"), str):
            file_failures.append(f"the manifest has a malformed array entry: {rec!r:.80}")
            continue
        key = (rec["gate"], rec["role"])
        if cell.block(*key) is None:
            file_failures.append(f"the manifest lists {key[0]} {key[1]}, which the cell does not have")
        elif key in records:
            file_failures.append(f"the manifest lists {key[0]} {key[1]} twice")
        else:
            records[key] = rec

    loaded: dict[tuple[str, str], np.ndarray] = {}
    for block in cell.blocks:
        key = (block.gate, block.role)
        label = f"{block.gate} {block.role} ({block.code_name})"
        rec = records.get(key)
        if rec is None:
            file_failures.append(f"{label} is not in the manifest")
            continue
        raw, array, problem = _load_exported(manifest.folder, rec)
        if problem:
            file_failures.append(f"{label}: {problem}")
        if raw is not None and rec.get("sha256") != hashlib.sha256(raw).hexdigest():
            file_failures.append(f"{label}: the sha256 of {_where(rec)} does not match the manifest "
                                 f"(the file changed after split)")
        if rec.get("alias_file"):
            alias = _safe_join(manifest.folder, rec["alias_file"])
            if alias is None or not os.path.isfile(alias):
                file_failures.append(f"{label}: its alias file {rec['alias_file']} is missing")
            elif raw is not None and _sha_file(alias) != hashlib.sha256(raw).hexdigest():
                file_failures.append(f"{label}: its alias file {rec['alias_file']} differs from {rec['file']}")
        if rec.get("dtype") != str(expected_dtype):
            file_failures.append(f"{label}: the manifest says dtype {rec.get('dtype')}, expected {expected_dtype} "
                                 f"for a {cell.dtype} cell")
        if list(rec.get("shape") or []) != list(block.shape):
            file_failures.append(f"{label}: the manifest says shape {rec.get('shape')}, expected {list(block.shape)}")
        source = rec.get("source") or {}
        if source != block.source.to_json():
            file_failures.append(f"{label}: the manifest says it came from {_describe_source(source)}, the source "
                                 f"cell has {block.source.describe()}")
        if array is None:
            continue
        if array.dtype != expected_dtype:
            file_failures.append(f"{label}: {_where(rec)} holds {array.dtype}, expected {expected_dtype}")
        if tuple(array.shape) != tuple(block.shape):
            file_failures.append(f"{label}: {_where(rec)} has shape {list(array.shape)}, expected {list(block.shape)}")
            continue
        loaded[key] = array

    n_files = len(cell.blocks)
    files_check = Check("export-files", FAILED if file_failures else PASSED,
                        (file_failures[0] + (f" (and {len(file_failures) - 1} more)" if len(file_failures) > 1 else ""))
                        if file_failures else f"{n_files} block files present; sha256, dtype, shape and source "
                                              f"match the manifest", failures=file_failures)
    files_check.seconds = time.perf_counter() - start

    start = time.perf_counter()
    blocks_check = _export_blocks_check(cell, blocks, loaded, records, expected_dtype)
    blocks_check.seconds = time.perf_counter() - start
    start = time.perf_counter()
    step_check = _export_step_check(cell, loaded, acts, xs64, h064, t64, framework_run, atol, rtol)
    step_check.seconds = time.perf_counter() - start
    return [files_check, blocks_check, step_check]


def _sha_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _describe_source(source) -> str:
    if not isinstance(source, dict):
        return repr(source)
    text = f"{source.get('tensor')}{source.get('slice', '')}"
    return f"{text} ({source['transform']})" if source.get("transform") else text


def _export_blocks_check(cell: GruCell, blocks, loaded, records, expected_dtype) -> Check:
    written = {key: np.ascontiguousarray(values.astype(expected_dtype)) for key, values in blocks.items()}
    by_bytes = {}
    for key, values in written.items():
        by_bytes.setdefault((values.shape, values.tobytes()), []).append(key)
    failures = []
    for block in cell.blocks:
        key = (block.gate, block.role)
        if key not in loaded:
            continue
        mine = written[key]
        theirs = np.ascontiguousarray(loaded[key].astype(expected_dtype))
        if theirs.tobytes() == mine.tobytes():
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(theirs.astype(np.float64) - mine.astype(np.float64))
        differ = int(np.count_nonzero(~((theirs == mine) | (np.isnan(theirs) & np.isnan(mine)))))
        sentence = (f"{block.gate} {block.role} ({block.code_name}, {_where(records[key])}) differs from "
                    f"{block.source.describe()} in {differ} of {mine.size} values (max abs diff "
                    f"{float(np.nanmax(diff)) if diff.size else 0.0:.3g})")
        others = [k for k in by_bytes.get((theirs.shape, theirs.tobytes()), []) if k != key]
        if others:
            sentence += f"; it holds the values of {' / '.join(f'{g} {r}' for g, r in others)} (gates swapped?)"
        failures.append(sentence)
    missing = [k for k in blocks if k not in loaded]
    if failures:
        return Check("export-blocks", FAILED, failures[0] + (f" (and {len(failures) - 1} more)"
                                                               if len(failures) > 1 else ""), failures=failures)
    if missing:
        names = ", ".join(f"{g} {r}" for g, r in missing)
        return Check("export-blocks", FAILED, f"{names} could not be compared: missing or unreadable (see export-files)",
                     failures=[f"{g} {r}: missing or unreadable" for g, r in missing])
    return Check("export-blocks", PASSED, f"all {len(loaded)} exported blocks equal their source slices bit for bit")


def _export_step_check(cell: GruCell, loaded, acts, xs64, h064, t64, framework_run, atol, rtol) -> Check:
    missing = [f"{b.gate} {b.role}" for b in cell.blocks if (b.gate, b.role) not in loaded]
    if missing:
        return Check("export-step", FAILED, f"cannot run the step from the exported files: {', '.join(missing)} "
                                            f"missing or unreadable")
    try:
        from_files = gru.run(loaded, xs64, h064, reset_after=cell.reset_after, activation_name=acts[0],
                             recurrent_activation_name=acts[1])
    except GruInspectError as exc:
        return Check("export-step", FAILED, f"the explicit GRU cannot run: {exc}")
    if framework_run is not None:
        a, r = _tolerance(framework_run.compute_dtype, atol, rtol)
        return _numeric_check("export-step", from_files, framework_run.hs,
                              what="the per-gate GRU from the exported files", oracle=framework_run.description,
                              compute_dtype=framework_run.compute_dtype, atol=a, rtol=r)
    eq = EQUATIONS.get(cell.layout)
    if eq is None:
        return Check("export-step", SKIPPED, f"no framework cell ran and layout {cell.layout} has no equations")
    a, r = _tolerance("float64", atol, rtol)
    check = _numeric_check("export-step", from_files, eq.run(cell, t64, xs64, h064, acts),
                           what="the per-gate GRU from the exported files",
                           oracle=f"the {eq.citation} equations on the fused tensors (no framework cell ran)",
                           compute_dtype="float64", atol=a, rtol=r)
    return check


__all__ = ["verify", "verify_store", "VerifyReport", "CellReport", "Check", "TOLERANCES", "FRAMEWORK_ORACLES", "EQUATIONS",
           "ORACLE_MODES"]
