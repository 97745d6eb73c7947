"""The explanation search: which porting mistakes turn A's blocks into B's.

Every transform is tried per block and the results are combined per role, so the search stays
small: for each role, a 3x3 table says which of A's gates (as stored, or transposed when the
block is square) fits each of B's gate slots, and a gate permutation (any of the six) explains
the role when every slot fits. The two bias roles are matched together per gate, since the
mistakes there (two bias sets summed into one, one set dropped) move numbers between them.
The whole search runs once per precision: as stored, then after a float16, bfloat16 or int8
round trip of A's numbers, which B must then hold exactly (its values representable in that
dtype, or on an int8 grid), so that a fine-tuned copy is never taken for a rounded one.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from ..cell import GATES
from ..convert._common import HARD_SIGMOID_SLOPE
from .compare import BIAS_ROLES, KERNEL_ROLES, Side, block_tolerance, close, finer_dtype

PERMUTATIONS = list(itertools.permutations(range(3)))
IDENTITY = (0, 1, 2)

# Bias relations of one of B's gates to one of A's, least severe first.
SAME, MERGED_INTO_BIAS, MERGED_INTO_RECURRENT, BIAS_DROPPED, RECURRENT_BIAS_DROPPED, BOTH_DROPPED = range(6)


@dataclass
class Precision:
    """How A's numbers are rounded before they are compared with B's."""

    name: str  # "stored", "float16", "bfloat16", "int8"
    scope: str | None = None  # int8: which numbers shared a scale
    scales: dict[tuple[str, str], float] = field(default_factory=dict)  # int8: B block -> grid step


@dataclass
class Explanation:
    """B's blocks as A's under one precision: per role, B slot index -> A gate index, and details."""

    precision: Precision
    perms: dict[str, tuple[int, ...]]
    transposed: dict[str, list[str]]  # role -> B gates whose block is A's transposed
    bias_relations: dict[str, int] = field(default_factory=dict)  # B gate -> relation
    ambiguous: dict[str, int] = field(default_factory=dict)  # role -> how many permutations fit
    gate_scale: float = 1.0  # B's reset/update blocks are A's times this (hard_sigmoid slope change)


def _round(values: np.ndarray, dtype_name: str) -> np.ndarray:
    if dtype_name == "float16":
        return values.astype(np.float16).astype(np.float64)
    import ml_dtypes

    return values.astype(ml_dtypes.bfloat16).astype(np.float64)


def _ulp(values: np.ndarray, dtype_name: str) -> np.ndarray:
    """The spacing of ``dtype_name`` numbers near each value (subnormal spacing near zero)."""
    mant, min_exp = (10, -14) if dtype_name == "float16" else (7, -126)
    with np.errstate(divide="ignore"):
        exp = np.floor(np.log2(np.abs(values)))
    exp = np.where(np.isfinite(exp), np.maximum(exp, min_exp), min_exp)
    return np.exp2(exp - mant)


def _int8_scale(values: np.ndarray, scope_max: float) -> float | None:
    """The int8 step ``scope_max / 127`` when every value sits on that grid, else None."""
    if scope_max <= 0:
        return None
    step = scope_max / 127.0
    q = values / step
    if np.all(np.abs(q - np.round(q)) <= 1e-3) and np.all(np.abs(q) <= 128.5):
        return step
    return None


def precisions(b: Side) -> list[Precision]:
    """Every rounding B's numbers are consistent with, finest first ("stored" always)."""
    out = [Precision("stored")]
    held = [k for k in b.present if np.any(b.values[k])]
    if not held:
        return out
    for name in ("float16", "bfloat16"):
        if all(np.array_equal(b.values[k], _round(b.values[k], name)) for k in held):
            out.append(Precision(name))
    # int8: one scale for a whole stored tensor, for one block, or for the whole cell.
    tensor_of = {(blk.gate, blk.role): blk.source.tensor for blk in b.cell.blocks}
    peak = {k: float(np.max(np.abs(b.values[k]))) for k in held}
    tensor_peak: dict[str, float] = {}
    for k in held:
        tensor_peak[tensor_of[k]] = max(tensor_peak.get(tensor_of[k], 0.0), peak[k])
    for scope in ("tensor", "block", "cell"):
        p = Precision("int8", scope)
        for k in held:
            scope_max = {"tensor": tensor_peak[tensor_of[k]], "block": peak[k], "cell": max(peak.values())}[scope]
            step = _int8_scale(b.values[k], scope_max)
            if step is None:
                break
            p.scales[k] = step
        else:
            out.append(p)
            break
    return out


class Matcher:
    """``fits(b_key, candidate)``: B's block ``b_key`` holds ``candidate`` (numbers derived from A)
    under one precision; the tolerance is that of the finer dtype of the two cells unless ``atol``."""

    def __init__(self, a: Side, b: Side, precision: Precision, atol: float | None):
        self.b = b
        self.precision = precision
        self.atol = atol
        self.rtol = block_tolerance(finer_dtype(a.cell.dtype, b.cell.dtype))

    def fits(self, b_key: tuple[str, str], candidate: np.ndarray) -> bool:
        target = self.b.values.get(b_key)
        if target is None:  # neither cell has this role
            return not np.any(candidate)
        if target.shape != candidate.shape:
            return False
        name = self.precision.name
        if name == "stored":
            return close(candidate, target, self.rtol, self.atol)
        if name == "int8":
            step = self.precision.scales.get(b_key, 0.0)
            if not step:
                return bool(np.all(candidate == 0))
            return bool(np.all(np.abs(target - candidate) <= 0.5 * step * (1 + 1e-3) + 1e-12))
        rounded = _round(candidate, name)
        return bool(np.all(np.abs(target - rounded) <= _ulp(rounded, name) * 1.01))


def _bias(side: Side, gate: str, role: str) -> np.ndarray:
    """A bias block, zeros when neither cell has that role (``Side.values`` covers both cells' roles)."""
    values = side.values.get((gate, role))
    if values is not None:
        return values
    other = "bias" if role == "recurrent_bias" else "recurrent_bias"
    return np.zeros_like(side.values[(gate, other)])


def kernel_fits(m: Matcher, a: Side, role: str) -> list[list[set[str]]]:
    """``table[slot][gate]``: how A's ``gate`` block fits B's ``slot`` ("stored", "transposed")."""
    table = []
    for g in GATES:
        row = []
        for k in GATES:
            va = a.values[(k, role)]
            ways = set()
            if m.fits((g, role), va):
                ways.add("stored")
            elif va.ndim == 2 and va.shape[0] == va.shape[1] and m.fits((g, role), va.T):
                ways.add("transposed")
            row.append(ways)
        table.append(row)
    return table


def bias_fits(m: Matcher, a: Side) -> list[list[int | None]]:
    """``table[slot][gate]``: the least severe relation of A's biases of ``gate`` to B's of ``slot``."""
    table = []
    for g in GATES:
        bk, brk = (g, "bias"), (g, "recurrent_bias")
        bb, brb = _bias(m.b, g, "bias"), _bias(m.b, g, "recurrent_bias")
        row = []
        for k in GATES:
            ab, arb = _bias(a, k, "bias"), _bias(a, k, "recurrent_bias")
            if m.fits(bk, ab) and m.fits(brk, arb):
                relation = SAME
            elif np.any(arb) and not np.any(brb) and m.fits(bk, ab + arb):
                relation = MERGED_INTO_BIAS
            elif np.any(ab) and not np.any(bb) and m.fits(brk, ab + arb):
                relation = MERGED_INTO_RECURRENT
            elif not np.any(bb) and m.fits(brk, arb):
                relation = BIAS_DROPPED
            elif not np.any(brb) and m.fits(bk, ab):
                relation = RECURRENT_BIAS_DROPPED
            elif not np.any(bb) and not np.any(brb):
                relation = BOTH_DROPPED
            else:
                relation = None
            row.append(relation)
        table.append(row)
    return table


def _kernel_perms(table) -> list[tuple[tuple[int, ...], list[str]]]:
    out = []
    for perm in PERMUTATIONS:
        if all(table[s][perm[s]] for s in range(3)):
            ways = ["stored" if "stored" in table[s][perm[s]] else "transposed" for s in range(3)]
            out.append((perm, ways))
    return out


def _prefer(perms: list[tuple[int, ...]], *preferred: tuple[int, ...] | None) -> tuple[int, ...]:
    for p in preferred:
        if p in perms:
            return p
    return perms[0]


def gate_scales(a: Side, b: Side) -> list[float]:
    """1, and when the two cells use the two hard_sigmoids, the factor on the reset/update
    pre-activations that makes B's compute A's: Keras 2's clip(0.2x + 0.5) is Keras 3's
    clip(y/6 + 0.5) of y = 1.2x (how ``convert`` ports one to the other)."""
    slopes = (HARD_SIGMOID_SLOPE.get(a.recurrent_activation), HARD_SIGMOID_SLOPE.get(b.recurrent_activation))
    if None in slopes or slopes[0] == slopes[1]:
        return [1.0]
    return [1.0, slopes[0] / slopes[1]]


def _scaled(a: Side, factor: float) -> Side:
    values = {(g, r): v * factor if g in ("reset", "update") else v for (g, r), v in a.values.items()}
    return replace(a, values=values)


def explain(a: Side, b: Side, atol: float | None = None) -> Explanation | None:
    """The simplest way B's blocks are A's after porting mistakes, or None when none is found."""
    for scale in gate_scales(a, b):
        found = _explain(_scaled(a, scale) if scale != 1.0 else a, b, atol)
        if found is not None:
            found.gate_scale = scale
            return found
    return None


def _explain(a: Side, b: Side, atol: float | None) -> Explanation | None:
    roles = {r for _, r in a.values}
    for precision in precisions(b):
        m = Matcher(a, b, precision, atol)
        perms: dict[str, tuple[int, ...]] = {}
        transposed: dict[str, list[str]] = {}
        ambiguous: dict[str, int] = {}
        for role in KERNEL_ROLES:
            found = _kernel_perms(kernel_fits(m, a, role))
            if not found:
                break
            # Fewest transposed blocks, then no reordering, then the other kernel's order.
            found.sort(key=lambda pw: (pw[1].count("transposed"), pw[0] != IDENTITY,
                                       pw[0] != perms.get("input_kernel")))
            perm, ways = found[0]
            perms[role] = perm
            if len(found) > 1 and found[1][1].count("transposed") == ways.count("transposed"):
                ambiguous[role] = len(found)
            t = [GATES[s] for s in range(3) if ways[s] == "transposed"]
            if t:
                transposed[role] = t
        else:
            relations: dict[str, int] = {}
            if roles & set(BIAS_ROLES):
                table = bias_fits(m, a)
                valid = [p for p in PERMUTATIONS if all(table[s][p[s]] is not None for s in range(3))]
                if not valid:
                    continue
                cost = {p: sum(table[s][p[s]] for s in range(3)) for p in valid}
                best = min(cost.values())
                kernel_perm = perms["input_kernel"] if perms["input_kernel"] == perms["recurrent_kernel"] else None
                perm = _prefer([p for p in valid if cost[p] == best], kernel_perm, IDENTITY)
                relations = {GATES[s]: table[s][perm[s]] for s in range(3)}
                if all(r == BOTH_DROPPED for r in relations.values()):
                    perm = kernel_perm or IDENTITY
                for role in BIAS_ROLES:
                    if role in roles:
                        perms[role] = perm
            return Explanation(precision, perms, transposed, relations, ambiguous)
    return None
