"""Findings: what an explanation means, as a code and a sentence a user can act on.

Codes are the contract's (docs/contracts.md, diff): ``gates_swapped``,
``transposed``, ``biases_merged``, ``bias_missing``, ``reset_placement``, ``activation``,
``dtype``, ``values``. ``changes_function`` says whether the difference changes what the cell
computes (summing the reset/update bias pairs does not; a swapped gate does).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cell import GATES, GruCell
from ..errors import GruInspectError
from ..layouts import spec_for
from .compare import Side
from .search import (BIAS_DROPPED, BOTH_DROPPED, IDENTITY, MERGED_INTO_BIAS, MERGED_INTO_RECURRENT,
                     RECURRENT_BIAS_DROPPED, Explanation)

ROLE_TEXT = {"input_kernel": "input kernel", "recurrent_kernel": "recurrent kernel", "bias": "input bias",
             "recurrent_bias": "recurrent bias"}
FORMULAS = {
    "sigmoid": "1 / (1 + exp(-x))",
    "hard_sigmoid_keras2": "clip(0.2x + 0.5, 0, 1), Keras 1/2 and tf.keras",
    "hard_sigmoid_keras3": "clip(x/6 + 0.5, 0, 1), Keras 3",
    "tanh": "tanh(x)",
    "relu": "max(x, 0)",
}
RESET_TEXT = {
    True: "after the recurrent matmul, r * (h U_h + b_hn) (Keras reset_after=True, PyTorch, cuDNN, "
          "ONNX linear_before_reset=1)",
    False: "before it, (r * h) U_h (TF1 GRUCell, Keras reset_after=False, ONNX linear_before_reset=0)",
}


@dataclass
class Finding:
    code: str
    detail: str
    changes_function: bool = True
    data: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"code": self.code, "detail": self.detail, "changes_function": self.changes_function, **self.data}


def listing(words: list[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def gate_order(cell: GruCell, role: str) -> list[str]:
    """The cell's gates in the order its file stores them for ``role`` (stored tensor, then offset)."""
    tensors = list(cell.tensors.values())
    blocks = [b for b in cell.blocks if b.role == role]
    blocks.sort(key=lambda b: (tensors.index(b.source.tensor) if b.source.tensor in tensors else len(tensors),
                               b.source.index))
    return [b.gate for b in blocks]


def label(cell: GruCell) -> str:
    """A short name of the cell's convention, e.g. "Keras GRU" or "TF1 tf.nn.rnn_cell.GRUCell"."""
    try:
        return spec_for(cell.layout).title.split(" (")[0]
    except GruInspectError:
        return cell.layout


def _roles_text(roles: list[str]) -> str:
    if set(roles) >= {"input_kernel", "recurrent_kernel", "bias"}:
        return "every block"
    return listing([ROLE_TEXT[r] for r in roles])


def _swaps(a: Side, b: Side, exp: Explanation) -> list[Finding]:
    groups: dict[tuple[int, ...], list[str]] = {}
    for role, perm in exp.perms.items():
        if perm != IDENTITY:
            groups.setdefault(perm, []).append(role)
    out = []
    for perm, roles in groups.items():
        held = [f"B's {GATES[s]} gate holds A's {GATES[perm[s]]} gate" for s in range(3) if perm[s] != s]
        role = roles[0]
        order_a, order_b = gate_order(a.cell, role), gate_order(b.cell, role)
        copied = len(order_a) == len(order_b) == 3 and all(
            GATES[perm[GATES.index(order_b[p])]] == order_a[p] for p in range(3))
        why = (f"A ({label(a.cell)}) stores its gates {'|'.join(order_a)} and B ({label(b.cell)}) "
               f"{'|'.join(order_b)}: ")
        why += ("A's order was copied into B's slots unchanged. Reorder the gate slices when porting."
                if copied else "the gate slices were cut or placed in the wrong order. Reorder them when porting.")
        ambiguous = [r for r in roles if r in exp.ambiguous]
        if ambiguous:
            why += f" (Other orders fit the {_roles_text(ambiguous)} equally: some of A's gates hold equal numbers.)"
        out.append(Finding("gates_swapped", f"{listing(held)} ({_roles_text(roles)}); {why}",
                           data={"roles": roles, "b_gate_holds_a_gate": {GATES[s]: GATES[perm[s]] for s in range(3)}}))
    return out


def _transposed(exp: Explanation) -> list[Finding]:
    out = []
    for role, gates in exp.transposed.items():
        which = "all three gates" if len(gates) == 3 else f"the {listing(gates)} gate{'s' if len(gates) > 1 else ''}"
        letter = "U" if role == "recurrent_kernel" else "W"
        out.append(Finding(
            "transposed",
            f"B's {ROLE_TEXT[role]} is A's transposed ({which}): the block is square, so {letter} loaded where "
            f"{letter}.T belongs without a shape error (one framework multiplies x @ W, the other W @ x). "
            f"Transpose it when porting.", data={"role": role, "gates": gates}))
    return out


def _biases(a: Side, b: Side, exp: Explanation) -> list[Finding]:
    rel = exp.bias_relations
    out = []
    merged = [g for g, r in rel.items() if r in (MERGED_INTO_BIAS, MERGED_INTO_RECURRENT)]
    harmless = [g for g in merged if g != "candidate" or not (
        a.reset_after or (rel[g] == MERGED_INTO_RECURRENT and b.reset_after))]
    if harmless:
        names = listing([f"{g} ({'b_r + b_hr' if g == 'reset' else 'b_z + b_hz' if g == 'update' else 'b_h + b_hn'})"
                         for g in harmless])
        into = "input" if rel[harmless[0]] == MERGED_INTO_BIAS else "recurrent"
        out.append(Finding("biases_merged", f"B's {into} biases of the {names} gates are A's input and recurrent "
                           f"biases summed: harmless, both are added before the same activation.",
                           changes_function=False, data={"gates": harmless}))
    if "candidate" in merged and "candidate" not in harmless:
        into = "input" if rel["candidate"] == MERGED_INTO_BIAS else "recurrent"
        out.append(Finding(
            "biases_merged",
            f"B's {into} candidate bias is A's b_h + b_hn summed: this changes the function, because "
            + ("A, a reset-after cell, multiplies b_hn by the reset gate" if a.reset_after else
               "B, a reset-after cell, multiplies its recurrent candidate bias by the reset gate")
            + " (c = act(x W_h + b_h + r * (h U_h + b_hn))). "
            f"Keep b_h as the input and b_hn as the recurrent candidate bias"
            + ("" if b.reset_after else ", which needs a reset-after cell in B") + ".",
            data={"gates": ["candidate"]}))
    for role, relations in (("bias", (BIAS_DROPPED, BOTH_DROPPED)), ("recurrent_bias", (RECURRENT_BIAS_DROPPED, BOTH_DROPPED))):
        gates = [g for g, r in rel.items() if r in relations and np.any(a.values.get((g, role), 0.0))]
        if not gates:
            continue
        peak = max(float(np.max(np.abs(a.values[(g, role)]))) for g in gates)
        absent = all((g, role) not in b.present for g in gates)
        out.append(Finding(
            "bias_missing",
            f"B has no {ROLE_TEXT[role]} for the {listing(gates)} gate{'s' if len(gates) > 1 else ''} "
            f"({'the file has none' if absent else 'zeros'}) where A's is nonzero (largest |b| {peak:.3g}): "
            f"the bias was not copied" + (", or B's layer was built without bias" if absent else "") + ".",
            data={"role": role, "gates": gates}))
    return out


def config_findings(a: Side, b: Side, gate_scale: float = 1.0) -> list[Finding]:
    out = []
    if gate_scale != 1.0:
        out.append(Finding(
            "activation",
            f"B computes A's {a.recurrent_activation} gates as {b.recurrent_activation} of {gate_scale:.4g} times "
            f"the pre-activations (B's reset and update blocks are A's times {gate_scale:.4g}): the same function.",
            changes_function=False,
            data={"attribute": "recurrent_activation", "a": a.recurrent_activation, "b": b.recurrent_activation,
                  "scale": gate_scale}))
    if a.reset_after != b.reset_after:
        fix = "a reset-after cell (Keras GRU(reset_after=True), PyTorch nn.GRU)" if a.reset_after else \
            "a reset-before cell (TF1 GRUCell, Keras GRU(reset_after=False), ONNX linear_before_reset=0)"
        out.append(Finding(
            "reset_placement",
            f"A applies the reset gate {RESET_TEXT[a.reset_after]}; B applies it {RESET_TEXT[b.reset_after]}: "
            f"the same weights compute a different function. Port into {fix}.",
            data={"a_reset_after": a.reset_after, "b_reset_after": b.reset_after}))
    for attr, what in (("recurrent_activation", "recurrent activation (reset and update gates)"),
                       ("activation", "activation (candidate)")):
        va, vb = getattr(a, attr), getattr(b, attr)
        if va != vb and not (gate_scale != 1.0 and attr == "recurrent_activation"):
            extra = ""
            if {va, vb} == {"hard_sigmoid_keras2", "hard_sigmoid_keras3"}:
                extra = " Both are called hard_sigmoid, but Keras 3 changed its slope."
            out.append(Finding(
                "activation",
                f"A's {what} is {va} ({FORMULAS.get(va, va)}) but B's is {vb} ({FORMULAS.get(vb, vb)}), so equal "
                f"blocks give different outputs.{extra} Set B's {attr} to match A's.",
                data={"attribute": attr, "a": va, "b": vb}))
    return out


def dtype_findings(a: Side, b: Side, exp: Explanation | None) -> list[Finding]:
    da, db = a.cell.dtype, b.cell.dtype
    p = exp.precision if exp else None
    if p is not None and p.name != "stored":
        change = max((float(np.max(np.abs(b.values[k] - a.values[k]))) for k in a.values
                      if b.values[k].shape == a.values[k].shape and b.values[k].size), default=0.0)
        how = "rounded to " + p.name if p.name != "int8" else f"after an int8 quantize/dequantize round trip (one scale per {p.scope})"
        stored = f", stored as {db}" if db != p.name else ""
        return [Finding("dtype", f"B holds A's {da} weights {how}{stored} (largest change {change:.3g}): precision "
                        f"was lost; port from the {da} weights, or accept an error of this size.",
                        data={"a_dtype": da, "b_dtype": db, "round_trip": p.name})]
    if da != db:
        return [Finding("dtype", f"B stores A's {da} numbers as {db}" + (
            ": lossless." if exp is not None else "."), changes_function=False,
            data={"a_dtype": da, "b_dtype": db})]
    return []


def explanation_findings(a: Side, b: Side, exp: Explanation) -> list[Finding]:
    """Every finding an explanation implies, structural ones first, then configuration and precision."""
    return _swaps(a, b, exp) + _transposed(exp) + _biases(a, b, exp) + config_findings(a, b, exp.gate_scale) + \
        dtype_findings(a, b, exp)


def values_finding(rows: list[dict]) -> Finding:
    """Nothing explains B: say where and by how much the blocks changed."""
    changed = [r for r in rows if r["max_abs"] is None or r["max_abs"] > 0]
    if not changed:
        return Finding("values", "The blocks are equal but the outputs differ beyond the tolerance.")
    worst = max(changed, key=lambda r: float("inf") if r["max_abs"] is None else r["max_abs"])
    where = f"{worst['gate']} {ROLE_TEXT[worst['role']]}"
    if worst["max_abs"] is None:
        size = f"shape {worst['shape_a']} in A, {worst['shape_b']} in B"
    else:
        rel = "-" if worst["rel_l2"] is None else f"{worst['rel_l2']:.3g}"
        size = f"max abs {worst['max_abs']:.3g}, relative L2 {rel}"
    every = len(changed) == len(rows)
    hint = " (a fine-tuned copy or another training run?)" if every else ""
    return Finding(
        "values",
        f"B's numbers differ from A's beyond every transform searched (gate order, transposition, bias sums and "
        f"drops, float16/bfloat16/int8 rounding): {len(changed)} of {len(rows)} blocks changed{hint}, most in "
        f"the {where} ({size}).", data={"blocks_changed": len(changed)})
