"""The checks ``verify`` runs on one cell: the round trip, the equations and the framework cell.

Every numeric check runs a seeded sequence of random inputs from a random state and compares the
explicit per-gate GRU (:mod:`gruinspect.maths`) with a second reading: the layout's own equations
on the fused tensors, or the framework's own cell (the layout spec's ``oracle``), with the
tolerances of :mod:`gruinspect.maths.tolerances` for the dtype the reference computed in.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..blocks import fuse, owned
from ..cell import GruCell
from ..errors import GruInspectError, MissingDependencyError
from ..layouts import spec_for
from ..maths import tolerance
from ..oracle import NotExpressible
from ..store import numpy_dtype
from .report import FAILED, PASSED, SKIPPED, Check, VerifyReport


@dataclass
class _Comparison:
    ok: bool
    max_abs: float
    max_rel: float
    worst: tuple[int, ...]


def _compare(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> _Comparison:
    """Elementwise ``|actual - expected| <= atol + rtol * |expected|``; NaN never passes, not even
    against NaN (two NaN outputs prove nothing about the weights that made them).

    ``max_rel`` is taken over the values of magnitude at least ``max(atol, 1e-3)`` only: near zero
    a relative error says nothing (GRU states lie in [-1, 1]).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    same = a == e
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


def _inputs(cell: GruCell, seed: int, index: int, steps: int, batch: int):
    """Seeded random inputs and initial state, exactly representable in the cell's dtype."""
    rng = np.random.default_rng([seed, index])
    dt = numpy_dtype(cell.dtype)
    xs = rng.normal(size=(steps, batch, cell.input_size)).astype(dt)
    h0 = rng.uniform(-1.0, 1.0, size=(batch, cell.units)).astype(dt)
    return xs, h0


ROUNDTRIP = "roundtrip"
ROUNDTRIP_ALIASES = ("refuse",)  # its name in 0.1; JSON repeats the check under it for one release


def _roundtrip_check(cell: GruCell, blocks, stored: dict[str, np.ndarray]) -> Check:
    try:
        rebuilt = fuse(cell, blocks)
    except GruInspectError as exc:
        return Check(ROUNDTRIP, FAILED, str(exc), aliases=ROUNDTRIP_ALIASES)
    failures = []
    for name, original in stored.items():
        original = owned(cell, name, original)
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
        return Check(ROUNDTRIP, FAILED,
                     failures[0] + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""),
                     failures=failures, aliases=ROUNDTRIP_ALIASES)
    n = len(stored)
    return Check(ROUNDTRIP, PASSED, f"re-fusing {len(blocks)} blocks rebuilds {n} stored tensor{'s' if n != 1 else ''} "
                                    f"bit for bit", aliases=ROUNDTRIP_ALIASES)


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



def _plan_framework(report: VerifyReport, cells: list[GruCell], oracle: str) -> Callable[[GruCell], str | None]:
    """Decide up front which cells get a framework run; returns cell -> reason to skip (or None)."""
    if oracle == "numpy":
        return lambda cell: "not requested (--oracle numpy)"
    missing: dict[int, set[str]] = {}
    for cell in cells:
        absent = {m for m in oracle_needs(cell) if not _module_available(m)}
        if absent:
            missing[id(cell)] = absent
    if missing:
        sentence = _missing_sentence(set().union(*missing.values()), _install_hint(cells, missing))
        names = [c.name for c in cells if id(c) in missing]
        if oracle == "framework":
            listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise MissingDependencyError(f"{sentence}, and --oracle framework needs it to verify {listed}.")
        n = len(names)
        report.notes.append(f"{sentence}: the framework check is skipped for {n} cell{'s' if n != 1 else ''}; "
                            f"the bit-exact and numpy checks still run.")
    return lambda cell: (_missing_sentence(missing[id(cell)], spec_for(cell.layout).oracle.install)
                         if id(cell) in missing else None)


def _equations_check(cell, t64, xs64, h064, acts, explicit, atol, rtol) -> Check:
    spec = spec_for(cell.layout)
    try:
        reference = spec.equations(cell, t64, xs64, h064, acts)
    except Exception as exc:  # a malformed cell must not stop the other checks
        return Check("equations", FAILED, f"the {spec.title} equations ({spec.equations_source}) cannot run on "
                                          f"the stored tensors: {exc}")
    a, r = tolerance("float64", atol, rtol)
    return _numeric_check("equations", explicit, reference, what="the per-gate GRU from the blocks",
                          oracle=f"the {spec.title} equations on the fused tensors ({spec.equations_source})",
                          compute_dtype="float64", atol=a, rtol=r)


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
            from ..oracle.tf1 import _import_tf

            _import_tf()
        for module in todo:
            if module != "tensorflow":
                importlib.import_module(module)


def _framework_check(cell, stored, xs, h0, acts, explicit, skip_reason, mode, atol, rtol):
    spec = spec_for(cell.layout)
    oracle = spec.oracle
    if oracle is None:
        status = FAILED if mode == "framework" else SKIPPED
        return Check("framework", status, f"no framework cell can run: {spec.no_oracle_reason}"), None, None
    if skip_reason:
        return Check("framework", SKIPPED, f"skipped: {skip_reason}"), None, None
    t = {role: stored[name] for role, name in cell.tensors.items()}
    try:
        _import_quietly(oracle_needs(cell))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notices of the legacy cells
            run = oracle.run(cell, t, xs, h0, acts)
    except NotExpressible as exc:
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
    a, r = tolerance(run.compute_dtype, atol, rtol)
    if run.valid is not None:  # steps past a sequence's length: the framework defines them as zeros
        explicit = np.where(np.asarray(run.valid)[..., None], explicit, 0)
    check = _numeric_check("framework", explicit, run.hs, what="the per-gate GRU from the blocks",
                           oracle=run.description, compute_dtype=run.compute_dtype, atol=a, rtol=r)
    return check, run, None


def oracle_needs(cell: GruCell) -> tuple[str, ...]:
    """The modules the cell's framework oracle imports (none when it has no oracle)."""
    oracle = spec_for(cell.layout).oracle
    return () if oracle is None else oracle.modules(cell)


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_NAMES = {"tensorflow": "TensorFlow", "tf_keras": "tf-keras", "keras": "Keras 3", "onnxruntime": "onnxruntime"}


def _missing_sentence(missing: set[str], install: str) -> str:
    if "tensorflow" in missing:
        return f"TensorFlow is not installed ({install})"
    return " and ".join(_NAMES.get(m, m) for m in sorted(missing)) + f" not installed ({install})"


def _install_hint(cells, missing) -> str:
    hints = dict.fromkeys(spec_for(c.layout).oracle.install for c in cells if id(c) in missing)
    return "; ".join(hints)


def _finite_check(cell: GruCell, blocks) -> Check | None:
    """A failed check naming the blocks that hold NaN or Inf, or None when every value is finite."""
    bad = []
    for block in cell.blocks:
        values = np.asarray(blocks[(block.gate, block.role)])
        count = int(values.size - np.count_nonzero(np.isfinite(values)))
        if count:
            bad.append(f"{block.gate} {block.role} ({block.code_name}): {count} of {values.size} values NaN or Inf")
    if not bad:
        return None
    return Check("finite", FAILED, f"the weights hold NaN or Inf ({'; '.join(bad[:3])}"
                                   f"{f' and {len(bad) - 3} more blocks' if len(bad) > 3 else ''}): "
                                   f"no comparison can prove this cell", failures=bad)
