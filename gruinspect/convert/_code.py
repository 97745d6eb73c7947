"""What the code targets (``c``, ``numpy``, ``pytorch-module``) share.

These targets write the cell's own equations instead of mapping it onto a framework's GRU, so they
hold every convention exactly: reset before or after the matmul, one or two bias sets (or none),
every activation of :data:`gruinspect.maths.ACTIVATIONS`. The blocks are written as the source has
them: a bias the source does not store is left out, not written as zeros.
"""
from __future__ import annotations

import importlib.util
import keyword
import os
import re
import sys
import uuid

import numpy as np

from ..cell import CODE_NAMES, GATES, ROLES
from ..maths import ACTIVATIONS
from ._common import Activation, Capabilities, Finding, MappedCell, MappedLayer

_ALL = {name: Activation(name) for name in ACTIVATIONS}

LOSSLESS = {
    "bfloat16": Finding("bfloat16 as float32", "bfloat16 weights are written as float32 (lossless)"),
    "float16": Finding("float16 as float32", "float16 weights are written as float32 (lossless)"),
}


def capabilities(target: str, label: str, written_dtype: dict[str, str],
                 dtype_notes: dict[str, Finding]) -> Capabilities:
    """A target that computes any convention with any known activation, keeping the source's biases."""
    return Capabilities(
        target=target, label=label, reset_after=(True, False), gate_activations=dict(_ALL),
        candidate_activations=dict(_ALL), recurrent_bias={True: True, False: True}, optional_bias=True,
        written_dtype=written_dtype, dtype_notes=dtype_notes, keeps_source_biases=True)


def present_blocks(mc: MappedCell) -> list[tuple[str, str]]:
    """The (gate, role) blocks the source cell stores, in gate then role order."""
    return [(g, r) for g in GATES for r in ROLES if mc.cell.block(g, r) is not None]


def block_source(mc: MappedCell, gate: str, role: str) -> str:
    block = mc.cell.block(gate, role)
    return block.source.describe() if block is not None else "-"


def identifier(text: str) -> str:
    """``text`` as a lower-case identifier: every run of other characters becomes one underscore."""
    out = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower() or "cell"
    return "c" + out if out[0].isdigit() else out


def cell_symbols(layers: list[MappedLayer], prefix: str) -> dict[int, str]:
    """A unique identifier per cell (keyed by ``id(cell)``): ``<prefix>_<cell name>``."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for ml in layers:
        for mc in ml.cells:
            base = f"{prefix}_{identifier(mc.cell.name)}" if prefix else identifier(mc.cell.name)
            symbol, n = base, 2
            while symbol in used or keyword.iskeyword(symbol):
                symbol, n = f"{base}_{n}", n + 1
            used.add(symbol)
            out[id(mc.cell)] = symbol
    return out


def consumption_order(ml: MappedLayer, xs: np.ndarray) -> list[tuple[MappedCell, np.ndarray, bool]]:
    """Each cell with the sequence in the order it reads it (reversed for a backward cell)."""
    out = []
    for mc in ml.cells:
        backward = mc.direction == "backward"
        out.append((mc, xs[::-1] if backward else xs, backward))
    return out


def clip_of(mc: MappedCell) -> float:
    """The bound on every activation's input (ONNX GRU ``clip``), 0.0 for none."""
    return float(mc.cell.config.get("clip") or 0.0)


def short_name(gate: str, role: str) -> str:
    return CODE_NAMES[(gate, role)]


def equations_text(reset_after: bool, recurrent_activation: str, activation: str, present: set,
                   clip: float = 0.0) -> list[str]:
    """The cell's step as lines of maths with the README's short names; absent biases are left out."""
    def terms(*parts):
        return " + ".join(p for p in parts if p)

    def b(gate, role):
        return short_name(gate, role) if (gate, role) in present else ""

    act_r, act = recurrent_activation, activation
    lines = [f"r  = {act_r}({terms('x W_r', b('reset', 'bias'), 'h U_r', b('reset', 'recurrent_bias'))})",
             f"z  = {act_r}({terms('x W_z', b('update', 'bias'), 'h U_z', b('update', 'recurrent_bias'))})"]
    rb = b("candidate", "recurrent_bias")
    if reset_after:
        inner = terms("h U_h", rb)
        lines.append(f"c  = {act}({terms('x W_h', b('candidate', 'bias'))} + r * ({inner}))")
    else:
        lines.append(f"c  = {act}({terms('x W_h', b('candidate', 'bias'), '(r * h) U_h', rb)})")
    lines.append("h' = z * h + (1 - z) * c")
    if clip:
        lines.append(f"every activation's input clipped to [-{clip:g}, {clip:g}] (ONNX clip)")
    return lines


def import_written(folder: str, file: str):
    """Import a Python file the target wrote into ``folder``, under a private name not kept in
    sys.modules (the proof runs what was written, as a user would import it)."""
    name = f"_gruinspect_written_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, file))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up while it runs
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module
