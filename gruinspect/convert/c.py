"""C99 source for every GRU cell: const weight arrays, one reference step per cell, a golden test.

Written (docs/contracts.md)::

    gru_weights.h / .c   const arrays per cell and block: kernels [units][inputs] (row j feeds unit j),
                         biases [units]; quantized kernels as int8/int16 plus a float scale array
    gru_step.h / .c      void <symbol>_step(const float *x, const float *h, float *h_out) per cell,
                         in that cell's own convention (reset before or after the matmul, the biases
                         it has, its activations); no allocation, no global written, h_out may be h
    gru_golden.h         the proof's seeded sequences and the float64 reference states
    test_gru.c           the only main(): runs every cell over them, exit 0 when within tolerance

Quantized (``quantize="int8"|"int16"``): symmetric scales, scale = max|W| / 127 (or 32767) per
tensor, or per output row with ``per_row``; only kernels are quantized, biases stay float32. The
step dequantizes on the fly: each dot product is summed in float32 over the integer weights times
the float32 inputs, then multiplied by the scale. With max-abs scales no weight saturates; the
count is reported anyway (it is the number of weights clipped to +-127). Quantizing is approximate
by nature, so those cells get an "approximate" verdict, and their measured error is reported.

Proof: the written files are compiled with the system C compiler (``cc -std=c99 -Wall -Wextra
-Werror -O2``, see :mod:`.c_build`), every cell is run on the proof's sequences by a driver linked
with ``gru_step.c``, and ``test_gru`` is built and run. Without a compiler, a numpy transcription
of the emitted C on the arrays read back from ``gru_weights.c`` proves it, and the report says so.
"""
from __future__ import annotations

import functools
import keyword
import os
import re
import shutil
import subprocess

import numpy as np

from ..errors import UsageError
from ..maths import run as run_gru
from . import c_emit
from ._code import (LOSSLESS, block_source, capabilities, cell_symbols, clip_of, consumption_order, present_blocks,
                    short_name)
from ._common import CellRun, Finding, Layer, MappedLayer, sequences, tolerance
from .c_build import BUILD, FLAGS, Build, BuildError, compiler, compiler_version, parse_golden, read_c_arrays, \
    transcribe_step

NAME = "c"
EXTRA = None
OPTIONS = ("prefix", "quantize", "per_row")
CLIPS = True  # writes the ONNX clip bound on the activations' inputs
QMAX = {"int8": 127, "int16": 32767}
FILES = {"weights_h": "gru_weights.h", "weights_c": "gru_weights.c", "step_h": "gru_step.h",
         "step_c": "gru_step.c", "golden_h": "gru_golden.h", "test_c": "test_gru.c"}

CAPS = capabilities(
    NAME, "the C step", written_dtype={"bfloat16": "float32", "float16": "float32", "float64": "float32"},
    dtype_notes=dict(LOSSLESS, float64=Finding(
        "float64 as float32", "float64 weights are written as float32: the C step computes in float32")))

_BUILDS: dict[str, Build] = {}


def check_dependencies() -> None:
    """Writing needs nothing; the proof falls back to numpy without a C compiler."""


def validate_options(options: dict) -> None:
    prefix = options.get("prefix")
    if prefix is not None and (not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", prefix) or keyword.iskeyword(prefix)):
        raise UsageError(f"Invalid --prefix {prefix!r}: use a C identifier (a letter, then letters, digits or _).")
    quantize = options.get("quantize")
    if quantize is not None and quantize not in QMAX:
        raise UsageError(f"Invalid --quantize {quantize!r}: use int8 or int16.")
    if options.get("per_row") and quantize is None:
        raise UsageError("--per-row needs --quantize int8 or int16.")


def adjust_plan(plan, options: dict) -> None:
    """A quantized cell is approximate by nature: the verdict says so before anything is written."""
    quantize = options.get("quantize")
    if quantize:
        how = "per output row" if options.get("per_row") else "per tensor"
        plan.verdict.lossy.append(Finding(
            f"{quantize} kernels",
            f"the kernels are quantized to {quantize} with symmetric scales {how}: approximate by nature; the "
            "error measured on the golden sequences and the saturated weights are reported"))


def layer_notes(layer: Layer) -> list[Finding]:
    if layer.reverse:
        return [Finding("feed reversed", "the step has no direction: the source read its sequence backwards, so "
                                         "run the step from the last input to the first")]
    return []


def quantize(w: np.ndarray, dtype: str, per_row: bool, scale: np.ndarray | None = None):
    """(integers, float32 scales, saturated count) of ``w`` [rows, cols] with symmetric scales.

    ``scale`` defaults to max|w| / qmax per tensor (shape [1]) or per row ([rows]); weights whose
    rounded ratio exceeds qmax are clipped and counted.
    """
    qmax = QMAX[dtype]
    w = np.asarray(w, dtype=np.float64)
    if scale is None:
        peak = np.max(np.abs(w), axis=1) if per_row else np.array([np.max(np.abs(w)) if w.size else 0.0])
        scale = np.where(peak > 0, peak / qmax, 1.0)
    scale = np.asarray(scale, dtype=np.float32)
    divisor = scale.astype(np.float64)[:, None] if per_row else float(scale[0])
    raw = np.rint(w / divisor)
    saturated = int(np.sum(np.abs(raw) > qmax))
    return np.clip(raw, -qmax, qmax).astype(dtype), scale, saturated


def _cell(mc, symbol: str, xs, h0, quantized: str | None, per_row: bool):
    """A cell's arrays (quantized when asked), its golden states and its conversion.json fields."""
    arrays = {}
    for gate, role in present_blocks(mc):
        name = short_name(gate, role)
        values = mc.blocks[(gate, role)]
        kernel = role.endswith("kernel")
        a = c_emit.CArray(gate, role, name, f"{symbol}_{name}", np.ascontiguousarray(values.T if kernel else values,
                                                                                     dtype=np.float32),
                          "float32", block_source(mc, gate, role) + (", transposed" if kernel else ""),
                          "[units][input_size]" if role == "input_kernel" else
                          "[units][units]" if kernel else "[units]")
        if kernel and quantized:
            a.values, a.scale, a.saturated = quantize(a.values, quantized, per_row)
            a.dtype, a.symbol, a.scale_symbol = quantized, f"{symbol}_{name}_q", f"{symbol}_{name}_scale"
        arrays[(gate, role)] = a
    backward = mc.direction == "backward"
    seq = xs[::-1] if backward else xs
    maths = dict(reset_after=mc.plan.reset_after, activation_name=mc.plan.activation,
                 recurrent_activation_name=mc.plan.recurrent_activation, clip=clip_of(mc))
    expected = run_gru(mc.blocks, seq, h0, **maths)
    cc = c_emit.CCell(mc.cell.name, mc.cell.layout, symbol, mc.cell.input_size, mc.cell.units, mc.plan.reset_after,
                      mc.plan.recurrent_activation, mc.plan.activation, mc.direction, arrays,
                      np.ascontiguousarray(np.swapaxes(seq, 0, 1), np.float32), h0.astype(np.float32),
                      np.swapaxes(expected, 0, 1), clip=clip_of(mc))
    cc.tolerance = tolerance(mc.plan, "float32", mc.cell, expected)
    report = {"symbol": symbol, "step": f"{symbol}_step", "arrays": [a.to_json() for a in arrays.values()]}
    if quantized:
        # The quantized maths in float64 (dequantized kernels): how far quantizing alone moves the states.
        deq = dict(mc.blocks)
        for key, a in arrays.items():
            if a.scale is not None:
                scale = a.scale.astype(np.float64)[:, None] if a.scale.size > 1 else float(a.scale[0])
                deq[key] = (a.values.astype(np.float64) * scale).T
        simulated = run_gru(deq, seq, h0, **maths)
        error = float(np.max(np.abs(simulated - expected)))
        kernels = [a for a in arrays.values() if a.scale is not None]
        cc.tolerance = error + cc.tolerance
        report["quantization"] = {
            "dtype": quantized, "per_row": per_row, "scheme": "symmetric, scale = max|W| / "
            f"{QMAX[quantized]} {'per output row' if per_row else 'per tensor'}; biases float32; "
            "dot products summed in float32, then scaled",
            "weights": int(sum(a.values.size for a in kernels)),
            "saturated": int(sum(a.saturated for a in kernels)),
            "quantized_maths_max_abs_error": error, "error_bound": cc.tolerance}
    return cc, report


def write(layers: list[MappedLayer], folder: str, prefix: str | None = None, quantize: str | None = None,
          per_row: bool = False) -> list[dict]:
    prefix = prefix or "gru"
    symbols = cell_symbols(layers, prefix)
    cells: list[c_emit.CCell] = []
    for ml in layers:
        xs, h0s = sequences(ml.layer)
        for mc, h0 in zip(ml.cells, h0s):
            cc, report = _cell(mc, symbols[id(mc.cell)], xs, h0, quantize, per_row)
            mc.report = report
            mc.written_as = {"file": FILES["step_c"], "symbol": cc.symbol, "step": f"{cc.symbol}_step",
                             "index": len(cells), "summary": f"{FILES['step_c']}: {cc.symbol}_step()"}
            cells.append(cc)
    guard = prefix.upper()
    quant_text = f"{quantize} ({'per row' if per_row else 'per tensor'} scales)" if quantize else None
    texts = {
        "weights_h": c_emit.weights_h(cells, f"{guard}_WEIGHTS_H"),
        "weights_c": c_emit.weights_c(cells, FILES["weights_h"]),
        "step_h": c_emit.step_h(cells, f"{guard}_STEP_H", quant_text),
        "step_c": c_emit.step_c(cells, FILES["step_h"], FILES["weights_h"]),
        "golden_h": c_emit.golden_h(cells, f"{guard}_GOLDEN_H", _golden_note(quantize)),
        "test_c": c_emit.test_c(cells, FILES["step_h"], FILES["golden_h"]),
    }
    # The proof's driver lives in the build folder, which is removed before the output is in place.
    os.makedirs(os.path.join(folder, BUILD), exist_ok=True)
    with open(os.path.join(folder, BUILD, "driver.c"), "w", encoding="ascii", newline="\n") as f:
        f.write(c_emit.driver_c(cells, FILES["step_h"]))
    records = []
    for key, text in texts.items():
        with open(os.path.join(folder, FILES[key]), "w", encoding="ascii", newline="\n") as f:
            f.write(text)
        records.append({"file": FILES[key], "cells": [c.name for c in cells], "role": key})
    return records


def _golden_note(quantize: str | None) -> str:
    text = ("Seeded inputs (standard normal rounded to float16) and initial states; the reference states come from "
            "the source cell's float64 equations (gruinspect.maths.run). Tolerance: float32 rounding")
    if quantize:
        text += f", plus the error {quantize} quantization alone causes (the float64 quantized maths)"
    return text + "."


@functools.lru_cache(maxsize=8)
def _version(cc: tuple[str, ...]) -> str:
    return compiler_version(list(cc))


def implementation() -> tuple[str, str | None]:
    cc = compiler()
    if cc is None:
        return ("numpy transcription of the emitted C (float32, arrays read back from gru_weights.c)",
                "no C compiler found (cc, gcc or clang on PATH, or $CC)")
    return f"gru_step.c compiled by {_version(tuple(cc))} with {' '.join(FLAGS)}", None


def _build(folder: str) -> Build:
    key = os.path.abspath(folder)
    if key not in _BUILDS:
        build = Build(folder, FILES, compiler())
        try:
            build.driver = build.program("driver", os.path.join(build.dir, "driver.c"))
        except BaseException:
            build.close()
            raise
        _BUILDS[key] = build
    return _BUILDS[key]


def run(folder: str, ml: MappedLayer, xs: np.ndarray, h0s: list[np.ndarray]) -> list[CellRun]:
    """Run every cell of the layer through the written C step (or its numpy transcription)."""
    name, fallback = implementation()
    runs = []
    arrays = None
    for (mc, seq, backward), h0 in zip(consumption_order(ml, xs), h0s):
        if fallback is None:
            build = _build(folder)
            outputs = build.run_cell(build.driver, mc.written_as["index"], seq, h0)
        else:
            if arrays is None:
                with open(os.path.join(folder, FILES["weights_c"]), encoding="ascii") as f:
                    arrays = read_c_arrays(f.read())
            step = transcribe_step(arrays, {"arrays": mc.report["arrays"], "reset_after": mc.plan.reset_after,
                                            "activation": mc.plan.activation, "clip": clip_of(mc),
                                            "recurrent_activation": mc.plan.recurrent_activation})
            h, out = h0.astype(np.float32), []
            for x in seq:
                h = step(x, h)
                out.append(h)
            outputs = np.stack(out).astype(np.float64)
        bound = mc.report.get("quantization", {}).get("error_bound")
        runs.append(CellRun(outputs, backward, "float32", name, fallback, tolerance=bound))
    return runs


def check_files(folder: str, records: list[dict]) -> list[str]:
    """Build and run the written test_gru (the golden test); record what it printed. Problems as sentences."""
    build = _BUILDS.pop(os.path.abspath(folder), None)
    test = next(r for r in records if r["file"] == FILES["test_c"])
    if build is None:
        shutil.rmtree(os.path.join(folder, BUILD), ignore_errors=True)
        test["golden_test"] = {"run": False, "reason": implementation()[1] or "the proof did not build the C"}
        return [] if implementation()[1] else ["the C was not built, so test_gru did not run"]
    try:
        exe = build.program("test_gru", os.path.join(folder, FILES["test_c"]))
        proc = subprocess.run([exe], capture_output=True, timeout=600)
    except BuildError as exc:
        return [f"test_gru.c: {exc}"]
    finally:
        build.close()
    stdout = proc.stdout.decode("utf-8", "replace")
    test["golden_test"] = {"run": True, "command": " ".join([os.path.basename(build.cc[0])] + build.flags
                                                            + ["test_gru.c", "gru_step.c", "gru_weights.c", "-lm"]),
                           "exit_code": proc.returncode, "cells": parse_golden(stdout)}
    if proc.returncode != 0:
        return [f"test_gru exited {proc.returncode}: " + "; ".join(stdout.strip().splitlines()[:4])]
    return []
