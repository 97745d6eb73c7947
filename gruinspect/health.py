"""Health figures of a GRU cell: what its gates do, read from the weights and one seeded run.

Every figure is computed from the canonical blocks (:mod:`gruinspect.cell`) with the cell's
own activations (Keras' ``hard_sigmoid`` included), in float64:

- memory timescale at zero input: with x = 0 and h = 0 the update gate is
  z0 = act_r(b_z [+ rb_z]); a unit keeps the fraction z0 of its state per step
  (h' = z * h + (1 - z) * c), so its state decays over tau = 1 / (1 - z0) steps;
- reset-gate openness at zero input: r0 = act_r(b_r [+ rb_r]);
- spectral norm (largest singular value) of each recurrent kernel U_r, U_z, U_h;
- saturation: the fraction of gate values below 0.01 or above 0.99, and of candidate values
  beyond +-0.99, over a seeded random input sequence run through the cell's own equations;
- dead units (every incoming weight and bias zero) and frozen units (an update gate that never
  falls below 0.999 on that run: the unit keeps its state whatever the input);
- equal bias pairs (bias == recurrent_bias exactly, per gate) and NaN / Inf counts.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .blocks import read_blocks, select_cells
from .cell import GATES, GruCell
from .layouts import activations_of
from .listing import open_cells
from .maths import activation
from .maths.canonical import clipped
from .maths.canonical import gates as gate_values  # (r, z, c, h') of one step

# Bin edges of the tau histogram, in steps; the last bin is [1000, inf].
TAU_EDGES = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0, math.inf)
SATURATION_LOW, SATURATION_HIGH = 0.01, 0.99
CANDIDATE_LIMIT = 0.99
FROZEN_UPDATE = 0.999
RUN_STEPS, RUN_BATCH, RUN_SEED = 16, 16, 0  # 256 samples per unit; U is read once per step


@dataclass
class Histogram:
    """``counts[i]`` values fell in ``[edges[i], edges[i + 1])`` (the last bin includes its end)."""

    edges: list[float]
    counts: list[int]

    def to_json(self) -> dict:
        return {"edges": [_finite_or_none(e) for e in self.edges], "counts": self.counts}


@dataclass
class Spread:
    """Summary of one value per unit."""

    median: float
    min: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: np.ndarray) -> Spread:
        known = values[~np.isnan(values)]  # inf stays: a unit that never forgets is a real value
        if not known.size:
            return cls(math.nan, math.nan, math.nan, math.nan)
        with np.errstate(invalid="ignore"):  # the mean of +inf and -inf
            return cls(float(np.median(known)), float(known.min()), float(known.max()), float(known.mean()))

    def to_json(self) -> dict:
        return {k: _finite_or_none(v) for k, v in vars(self).items()}


@dataclass
class CellHealth:
    """The health figures of one cell; per-unit arrays stay in memory (for drawing), not in JSON."""

    cell: GruCell
    activation: str
    recurrent_activation: str
    activations_assumed: bool
    tau: np.ndarray                      # per unit, steps (inf: the unit never forgets)
    tau_spread: Spread
    tau_histogram: Histogram
    reset_openness: np.ndarray           # per unit, r0 in [0, 1]
    reset_spread: Spread
    spectral_norms: dict[str, float]     # gate -> largest singular value of its recurrent kernel
    saturation: dict[str, float]         # gate -> fraction of saturated values on the run
    dead_units: list[int]
    frozen_units: list[int]
    equal_bias_pairs: dict[str, bool]    # gate -> bias == recurrent_bias exactly (gates with both)
    nan_count: int
    inf_count: int
    nonfinite_blocks: dict[str, tuple[int, int]] = field(default_factory=dict)  # block key -> (nan, inf)
    run: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        finite_tau = self.tau[np.isfinite(self.tau)]
        return {
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "activations_assumed": self.activations_assumed,
            "tau": {**self.tau_spread.to_json(), "infinite_units": int(np.isposinf(self.tau).sum()),
                    "histogram": self.tau_histogram.to_json(),
                    "max_finite": float(finite_tau.max()) if finite_tau.size else None},
            "reset_openness": self.reset_spread.to_json(),
            "spectral_norms": {g: _finite_or_none(v) for g, v in self.spectral_norms.items()},
            "saturation": {g: _finite_or_none(v) for g, v in self.saturation.items()},
            "dead_units": self.dead_units,
            "frozen_units": self.frozen_units,
            "equal_bias_pairs": self.equal_bias_pairs,
            "nan_count": self.nan_count,
            "inf_count": self.inf_count,
            "nonfinite_blocks": {k: {"nan": n, "inf": i} for k, (n, i) in self.nonfinite_blocks.items()},
            "run": self.run,
            "notes": self.notes,
        }

    def rows(self) -> list[tuple[str, str]]:
        """(figure, value) pairs as text, for tables and the report."""
        t, r = self.tau_spread, self.reset_spread
        inf_units = int(np.isposinf(self.tau).sum())
        acts = f"{self.recurrent_activation} / {self.activation}" + (" (assumed)" if self.activations_assumed else "")
        rows = [
            ("activations (gates / candidate)", acts),
            ("memory timescale tau (steps)", f"median {_num(t.median)}, max {_num(t.max)}"
             + (f", {inf_units} unit{'s' if inf_units != 1 else ''} never forget" if inf_units else "")),
            ("reset openness at zero input", f"median {_num(r.median)}, min {_num(r.min)}, max {_num(r.max)}"),
            ("spectral norm U_r / U_z / U_h", " / ".join(_num(self.spectral_norms.get(g, math.nan)) for g in GATES)),
            ("saturated reset / update / candidate",
             " / ".join(_pct(self.saturation.get(g, math.nan)) for g in GATES)),
            ("dead units", _units(self.dead_units)),
            ("frozen units (update gate >= 0.999)", _units(self.frozen_units)),
            ("equal bias pairs", ", ".join(g for g, eq in self.equal_bias_pairs.items() if eq) or
             ("none" if self.equal_bias_pairs else "no recurrent biases")),
            ("NaN / Inf", f"{self.nan_count} / {self.inf_count}"),
        ]
        return rows + [("note", n) for n in self.notes]


def _finite_or_none(value: float):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _num(value: float) -> str:
    if value is None or math.isnan(value):
        return "-"
    return "inf" if math.isinf(value) else f"{value:.4g}"


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1%}"


def _units(units: list[int]) -> str:
    if not units:
        return "none"
    shown = ", ".join(map(str, units[:8]))
    return f"{len(units)}: {shown}" + (", ..." if len(units) > 8 else "")


def _histogram(values: np.ndarray, edges: Iterable[float]) -> Histogram:
    edges = list(edges)
    counts = []
    for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
        last = i == len(edges) - 2
        counts.append(int(((values >= lo) & ((values <= hi) if last else (values < hi))).sum()))
    return Histogram(edges, counts)


def zero_input_bias(blocks: dict, gate: str, units: int) -> np.ndarray:
    """The gate's pre-activation at x = 0, h = 0: ``bias [+ recurrent_bias]`` (zeros without bias)."""
    total = np.zeros(units, dtype=np.float64)
    for role in ("bias", "recurrent_bias"):
        if (gate, role) in blocks:
            total = total + blocks[(gate, role)]
    return total


def timescale(pre_update: np.ndarray, recurrent_activation: str) -> np.ndarray:
    """tau = 1 / (1 - act_r(pre_update)) steps, per unit; inf where the gate is exactly 1."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if recurrent_activation == "sigmoid":
            # 1 / (1 - sigmoid(b)) = 1 + exp(b), without the cancellation of 1 - sigmoid(b)
            return 1.0 + np.exp(pre_update)
        keep = activation(recurrent_activation)(pre_update)
        return 1.0 / (1.0 - keep)


# Up to this size the exact SVD is cheap; above it Lanczos finds the top singular value in a few
# dozen matrix-vector products (a 2048 x 2048 SVD takes a minute on a small machine).
EXACT_SVD_MAX = 192


def spectral_norm(u: np.ndarray, *, rtol: float = 1e-10) -> float:
    """The largest singular value of ``u``.

    Small matrices use the SVD. Larger ones run Lanczos on ``u.T @ u`` from a seeded start vector,
    with full reorthogonalisation, until the top Ritz value changes by less than ``rtol`` (relative)
    between steps; Ritz values rise monotonically to the top eigenvalue, whose root is the norm.
    """
    peak = float(np.abs(u).max()) if u.size else 0.0
    if peak == 0.0:
        return 0.0
    u = u / peak  # |u| <= 1: u.T @ u cannot overflow, whatever the file holds
    if min(u.shape) <= EXACT_SVD_MAX:
        return peak * float(np.linalg.svd(u, compute_uv=False)[0])
    n = u.shape[1]
    steps = min(n, 400)
    basis = np.zeros((steps, n))
    q = np.random.default_rng(0).normal(size=n)
    q /= np.linalg.norm(q)
    alphas: list[float] = []
    betas: list[float] = []
    top = previous = 0.0
    for j in range(steps):
        basis[j] = q
        w = u.T @ (u @ q)
        alphas.append(float(q @ w))
        for _ in range(2):  # twice is enough to keep the basis orthogonal in floating point
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = float(np.linalg.norm(w))
        tri = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        top = float(np.linalg.eigvalsh(tri)[-1])
        if abs(top - previous) <= rtol * top or beta <= 1e-300:
            break
        previous = top
        betas.append(beta)
        q = w / beta
    return peak * math.sqrt(max(top, 0.0))


def cell_health(cell: GruCell, blocks: dict, *, steps: int = RUN_STEPS, batch: int = RUN_BATCH,
                seed: int = RUN_SEED) -> CellHealth:
    """The health figures of ``cell`` from its blocks ``{(gate, role): array}``.

    >>> # health = cell_health(cell, read_blocks(store, cell)); health.tau_spread.median
    """
    (act_name, ract_name), assumed = activations_of(cell)
    act, act_r = activation(act_name), activation(ract_name)
    clip = float(cell.config.get("clip") or 0.0)  # ONNX GRU `clip` bounds every activation's input
    notes = []
    if clip:
        act, act_r = clipped(act, clip), clipped(act_r, clip)
        notes.append(f"every activation's input bounded to [-{clip:g}, {clip:g}] (clip)")
    H, I = cell.units, cell.input_size
    with np.errstate(invalid="ignore", over="ignore"):
        b = {key: np.asarray(v, dtype=np.float64) for key, v in blocks.items()}
    nonfinite = {}
    nans = infs = 0
    for (gate, role), values in b.items():
        n, i = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        nans, infs = nans + n, infs + i
        if n or i:
            nonfinite[f"{gate}_{role}"] = (n, i)

    pre_update = zero_input_bias(b, "update", H)
    tau = timescale(np.clip(pre_update, -clip, clip) if clip else pre_update, ract_name)
    with np.errstate(over="ignore", invalid="ignore"):
        r0 = act_r(zero_input_bias(b, "reset", H))

    norms = {}
    for gate in GATES:
        u = b.get((gate, "recurrent_kernel"))
        if u is None:
            continue
        norms[gate] = spectral_norm(u) if np.isfinite(u).all() and u.size else math.nan

    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, batch, I))
    h = np.zeros((batch, H))
    low_high = {g: 0 for g in GATES}
    z_min = np.full(H, np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        for x in xs:
            r, z, c, h = gate_values(b, x, h, reset_after=cell.reset_after, act=act, act_r=act_r)
            low_high["reset"] += int(((r < SATURATION_LOW) | (r > SATURATION_HIGH)).sum())
            low_high["update"] += int(((z < SATURATION_LOW) | (z > SATURATION_HIGH)).sum())
            low_high["candidate"] += int((np.abs(c) > CANDIDATE_LIMIT).sum())
            z_min = np.fmin(z_min, np.where(np.isnan(z), -np.inf, z).min(axis=0))
    total = steps * batch * H
    saturation = {g: low_high[g] / total if total else math.nan for g in GATES}
    frozen = [int(j) for j in np.flatnonzero(z_min >= FROZEN_UPDATE)]

    incoming = np.zeros(H, dtype=bool)
    for (gate, role), values in b.items():
        nonzero = values != 0  # NaN counts as nonzero: not dead
        incoming |= nonzero.any(axis=0) if values.ndim == 2 else nonzero
    dead = [int(j) for j in np.flatnonzero(~incoming)]

    equal = {}
    for gate in GATES:
        if (gate, "bias") in b and (gate, "recurrent_bias") in b:
            equal[gate] = bool(np.array_equal(blocks[(gate, "bias")], blocks[(gate, "recurrent_bias")]))

    return CellHealth(
        cell=cell, activation=act_name, recurrent_activation=ract_name, activations_assumed=assumed,
        tau=tau, tau_spread=Spread.of(tau), tau_histogram=_histogram(tau, TAU_EDGES),
        reset_openness=r0, reset_spread=Spread.of(r0), spectral_norms=norms, saturation=saturation,
        dead_units=dead, frozen_units=frozen, equal_bias_pairs=equal, nan_count=nans, inf_count=infs,
        nonfinite_blocks=nonfinite, notes=notes,
        run={"steps": steps, "batch": batch, "seed": seed, "input": "standard normal", "initial_state": "zeros"},
    )


def health_of_cells(store, cells: list[GruCell], progress=None) -> list[CellHealth]:
    """:func:`cell_health` of each cell, reading one cell's tensors at a time."""
    out = []
    for i, cell in enumerate(cells):
        out.append(cell_health(cell, read_blocks(store, cell)))
        if progress:
            progress(i + 1, len(cells))
    return out


def compute_health(path: str, patterns=None, progress=None) -> tuple[dict, list[CellHealth]]:
    """``(source, [CellHealth])`` for the cells of PATH matching ``patterns``."""
    with open_cells(path) as (store, inventory):
        cells = select_cells(inventory.cells, patterns)
        figures = health_of_cells(store, cells, progress)
        return inventory.source, figures  # source.files: with the files the figures read
