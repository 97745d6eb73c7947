"""Block-by-block and output comparison of two GRU cells, in float64.

Blocks are compared in canonical form (``x @ W`` orientation, docs/conventions.md); a
bias role one cell lacks counts as zeros there. Outputs come from the reference equations
(:func:`gruinspect.maths.run`) run with each cell's own configuration on one seeded sequence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import maths
from ..cell import GATES, ROLES, GruCell
from ..layouts import spec_for
from ..maths import tolerance as output_tolerance

KERNEL_ROLES = ("input_kernel", "recurrent_kernel")
BIAS_ROLES = ("bias", "recurrent_bias")

# Finest first; a comparison is as strict as the finer of the two cells' dtypes.
_RANK = {"float64": 3, "float32": 2, "float16": 1, "bfloat16": 0}
# Relative error allowed between blocks that hold the same numbers (a sum of two biases rounded
# once more, a value widened or narrowed within the dtype): a few units in the last place.
BLOCK_RTOL = {"float64": 1e-14, "float32": 1e-6, "float16": 4e-3, "bfloat16": 3e-2}

STEPS, BATCH = 6, 4


def finer_dtype(a: str, b: str) -> str:
    return a if _RANK.get(a, 2) >= _RANK.get(b, 2) else b


@dataclass
class Side:
    """One cell with its blocks in float64: ``values`` has every (gate, role) of both cells,
    zeros where this cell has no such block; ``present`` says which it really has."""

    cell: GruCell
    values: dict[tuple[str, str], np.ndarray]
    present: set[tuple[str, str]]
    activation: str
    recurrent_activation: str

    @property
    def reset_after(self) -> bool:
        return self.cell.reset_after

    def blocks_for_run(self) -> dict[tuple[str, str], np.ndarray]:
        return {k: v for k, v in self.values.items() if k in self.present}


def make_sides(cell_a: GruCell, stored_a: dict, cell_b: GruCell, stored_b: dict) -> tuple[Side, Side, list[str]]:
    """Both cells in canonical float64 over the union of their blocks, with their activations
    resolved: one the file does not record is taken from the other cell, else A's layout default."""
    notes = []
    keys = [(g, r) for g in GATES for r in ROLES if (g, r) in stored_a or (g, r) in stored_b]
    acts = {}
    for attr in ("activation", "recurrent_activation"):
        va, vb = getattr(cell_a, attr), getattr(cell_b, attr)
        what = attr.replace("_", " ")
        if va is None and vb is None:
            va = vb = getattr(spec_for(cell_a.layout).default_activations, attr)
            notes.append(f"Neither file records its {what}; {va} assumed for both.")
        elif va is None:
            va = vb
            notes.append(f"A does not record its {what}; B's ({vb}) assumed.")
        elif vb is None:
            vb = va
            notes.append(f"B does not record its {what}; A's ({va}) assumed.")
        acts[attr] = (va, vb)
    sides = []
    for i, (cell, stored) in enumerate(((cell_a, stored_a), (cell_b, stored_b))):
        values = {}
        for key in keys:
            if key in stored:
                values[key] = np.asarray(stored[key], dtype=np.float64)
            else:
                other = stored_b if i == 0 else stored_a
                values[key] = np.zeros(np.shape(other[key]), dtype=np.float64)
        sides.append(Side(cell, values, set(stored), acts["activation"][i], acts["recurrent_activation"][i]))
    return sides[0], sides[1], notes


def block_rows(a: Side, b: Side) -> list[dict]:
    """Per block: max abs difference, relative L2 (to A's norm), both shapes, and which side lacks it."""
    rows = []
    for key, va in a.values.items():
        vb = b.values[key]
        gate, role = key
        row = {"gate": gate, "role": role, "shape_a": list(va.shape) if key in a.present else None,
               "shape_b": list(vb.shape) if key in b.present else None}
        if va.shape != vb.shape:
            row.update(max_abs=None, rel_l2=None)
        else:
            delta = vb - va
            max_abs = float(np.max(np.abs(delta))) if delta.size else 0.0
            norm_a = float(np.linalg.norm(va))
            norm_d = float(np.linalg.norm(delta))
            rel = norm_d / norm_a if norm_a else (0.0 if norm_d == 0 else None)
            row.update(max_abs=finite(max_abs), rel_l2=finite(rel))
        rows.append(row)
    return rows


def finite(value: float | None) -> float | None:
    """``value``, or None when it is NaN or infinite (JSON has no such numbers)."""
    return value if value is None or np.isfinite(value) else None


def identical(a: Side, b: Side) -> bool:
    """Every block bit-equal in the same dtype, the same blocks, the same layout and recorded configuration
    (a port to another framework with bit-equal blocks is equivalent, not identical)."""
    ca, cb = a.cell, b.cell
    if (ca.layout, ca.dtype, ca.reset_after, ca.activation, ca.recurrent_activation) != \
            (cb.layout, cb.dtype, cb.reset_after, cb.activation, cb.recurrent_activation):
        return False
    if a.present != b.present:
        return False
    return all(np.array_equal(a.values[k], b.values[k], equal_nan=True) for k in a.present)


def block_tolerance(dtype: str) -> float:
    return BLOCK_RTOL.get(dtype, BLOCK_RTOL["float32"])


def close(x: np.ndarray, y: np.ndarray, rtol: float, atol: float | None = None) -> bool:
    """``y`` holds the numbers of ``x``: within ``atol`` when given, else within ``rtol`` of the larger magnitude."""
    if x.shape != y.shape:
        return False
    if not x.size:
        return True
    err = float(np.max(np.abs(x - y)))
    if atol is not None:
        return err <= atol
    scale = max(float(np.max(np.abs(x))), float(np.max(np.abs(y))))
    return err <= rtol * scale


def probe(cell: GruCell, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded input sequence [T, batch, I] and initial state [batch, H]; the batch rows see
    inputs of several scales so saturating activations are reached as well as their middle."""
    rng = np.random.default_rng(seed)
    scale = np.array([0.5, 1.0, 2.0, 4.0])[:, None]
    xs = rng.standard_normal((STEPS, BATCH, cell.input_size)) * scale
    h0 = rng.uniform(-0.9, 0.9, (BATCH, cell.units))
    return xs, h0


def run_side(side: Side, xs: np.ndarray, h0: np.ndarray, blocks: dict | None = None) -> np.ndarray:
    return maths.run(side.blocks_for_run() if blocks is None else blocks, xs, h0, reset_after=side.reset_after,
                   activation_name=side.activation, recurrent_activation_name=side.recurrent_activation)


def tolerance_for(dtype: str, atol: float | None) -> dict:
    """The output tolerance of ``dtype``, or exactly ``atol`` when given."""
    tol_abs, tol_rel = output_tolerance(dtype, atol=atol, rtol=0.0 if atol is not None else None)
    return {"dtype": dtype, "atol": tol_abs, "rtol": tol_rel}


def outputs_close(ha: np.ndarray, hb: np.ndarray, tol: dict) -> bool:
    """Whether two state sequences agree within ``tol`` (:func:`tolerance_for`)."""
    return bool(np.all(np.abs(hb - ha) <= tol["atol"] + tol["rtol"] * np.abs(ha)))


def equivalence_notes(a: Side, b: Side) -> list[str]:
    """What differs between two cells that compute the same, beyond what findings say."""
    notes = []
    if a.cell.layout != b.cell.layout:
        same = all(np.array_equal(a.values[k], b.values[k]) for k in a.values)
        notes.append(f"B holds A's cell in another layout ({a.cell.layout} -> {b.cell.layout})"
                     + ("; every block is equal bit for bit." if same else "."))
    for first, second, x, y in (("B", "A", b, a), ("A", "B", a, b)):
        extra = sorted({r for g, r in x.present - y.present if not np.any(x.values[(g, r)])})
        if extra:
            notes.append(f"{first} stores zero {' and '.join(r.replace('_', ' ') + 'es' for r in extra)} that "
                         f"{second} does not have: the same function.")
    return notes
