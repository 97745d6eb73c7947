"""What every target shares: verdicts, the mapping plan, layers, and the numbers of the proof.

A conversion is planned from a cell's *convention* alone (reset placement, activations, which
bias sets it has, dtype), so the verdict table in the README and the verdict printed before a
conversion come from the same code. Each target describes what it can hold in a
:class:`Capabilities`; :func:`make_plan` compares the two and says, sentence by sentence, what
is exact, what needs a note, and what cannot be represented (with the closest mapping
``--approximate`` would write). :func:`apply_plan` then turns the source's canonical blocks into
canonical blocks *in the target's terms* (float64, every role present), which the target module
packs into its own layout.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..cell import GATES, GruCell
from ..maths import TOLERANCES, sigmoid  # noqa: F401 - sigmoid for the targets
from ..maths import run as run_gru

GATE_SLOTS = {"recurrent": ("reset", "update"), "candidate": ("candidate",)}
DEFAULTS = {"recurrent": "sigmoid", "candidate": "tanh"}

# Canonical activation name -> how people write it in a sentence.
DISPLAY = {
    "hard_sigmoid_keras2": "hard_sigmoid (Keras 2: clip(0.2x + 0.5))",
    "hard_sigmoid_keras3": "hard_sigmoid (Keras 3: clip(x/6 + 0.5))",
}
SHORT = {"hard_sigmoid_keras2": "hard_sigmoid (Keras 2)", "hard_sigmoid_keras3": "hard_sigmoid (Keras 3)"}
# Slope at 0 of each hard sigmoid: sigmoid(4 * slope * x) has the same slope there.
HARD_SIGMOID_SLOPE = {"hard_sigmoid_keras2": 0.2, "hard_sigmoid_keras3": 1.0 / 6.0}

EXACT, NOTE, REFUSED = "exact", "exact-with-note", "not-representable"
APPROXIMATE = "approximate"  # a loss asked for (quantized C kernels): never exact, always measured and reported
KIND_TEXT = {EXACT: "exact", NOTE: "exact with a note", REFUSED: "not representable", APPROXIMATE: "approximate"}


def display(name: str | None) -> str:
    return DISPLAY.get(name, name or "unknown")


@dataclass(frozen=True)
class Finding:
    """One fact about a conversion: ``short`` for the verdict table, ``text`` a whole sentence."""

    short: str
    text: str

    def to_json(self) -> dict:
        return {"short": self.short, "text": self.text}


@dataclass
class Verdict:
    """Exact, exact with notes, or not representable (``reasons``), with the closest mapping."""

    notes: list[Finding] = field(default_factory=list)
    reasons: list[Finding] = field(default_factory=list)
    approximation: list[Finding] = field(default_factory=list)
    lossy: list[Finding] = field(default_factory=list)  # losses the user asked for (quantizing)

    @property
    def kind(self) -> str:
        return REFUSED if self.reasons else APPROXIMATE if self.lossy else NOTE if self.notes else EXACT

    @property
    def text(self) -> str:
        return KIND_TEXT[self.kind]

    def add_note(self, finding: Finding) -> None:
        if finding not in self.notes:
            self.notes.append(finding)

    def to_json(self) -> dict:
        return {"verdict": self.kind, "reasons": [f.to_json() for f in self.reasons],
                "notes": [f.to_json() for f in self.notes],
                "approximation": [f.to_json() for f in self.approximation],
                "lossy": [f.to_json() for f in self.lossy]}


# ------------------------------------------------------------------------------------ conventions

BIAS_SETS = {
    "none": "no bias",
    "one": "one bias set",
    "two": "two bias sets",
    "summed": "reset/update biases summed",
    "partial": "some biases missing",
}


@dataclass(frozen=True)
class Convention:
    """What decides whether a cell converts exactly: the rows of the verdict table."""

    reset_after: bool
    recurrent_activation: str | None
    activation: str | None
    biases: str  # a key of BIAS_SETS
    dtype: str = "float32"
    # The gates with each bias, when they are not what ``biases`` implies ("partial").
    bias_gates: frozenset | None = None
    recurrent_bias_gates: frozenset | None = None

    @classmethod
    def of(cls, cell: GruCell) -> Convention:
        biases = bias_sets(cell)
        if biases != "partial":
            return cls(cell.reset_after, cell.recurrent_activation, cell.activation, biases, cell.dtype)
        return cls(cell.reset_after, cell.recurrent_activation, cell.activation, biases, cell.dtype,
                   frozenset(g for g in GATES if cell.block(g, "bias") is not None),
                   frozenset(g for g in GATES if cell.block(g, "recurrent_bias") is not None))

    def label(self) -> str:
        acts = f"{SHORT.get(self.recurrent_activation, self.recurrent_activation or '?')} / " \
               f"{SHORT.get(self.activation, self.activation or '?')}"
        if self.recurrent_activation is None and self.activation is None:
            acts = "activations not recorded"
        reset = "reset after" if self.reset_after else "reset before"
        return f"{reset}, {acts}, {BIAS_SETS[self.biases]}"

    @property
    def bias_present(self) -> set[str]:
        if self.bias_gates is not None:
            return set(self.bias_gates)
        return set() if self.biases == "none" else set(GATES)

    @property
    def recurrent_bias_present(self) -> set[str]:
        if self.recurrent_bias_gates is not None:
            return set(self.recurrent_bias_gates)
        return {"two": set(GATES), "summed": {"candidate"}}.get(self.biases, set())


def bias_sets(cell: GruCell) -> str:
    bias = {g for g in GATES if cell.block(g, "bias") is not None}
    rbias = {g for g in GATES if cell.block(g, "recurrent_bias") is not None}
    if not bias and not rbias:
        return "none"
    if bias == set(GATES) and not rbias:
        return "one"
    if bias == set(GATES) and rbias == set(GATES):
        return "two"
    if bias == set(GATES) and rbias == {"candidate"}:
        return "summed"
    return "partial"


# ------------------------------------------------------------------------------------ capabilities


@dataclass(frozen=True)
class Activation:
    """How a target writes one canonical activation; ``note`` when the name or form changes."""

    name: str
    note: Finding | None = None
    alpha: float | None = None
    beta: float | None = None


@dataclass(frozen=True)
class Capabilities:
    """What a target can hold, in canonical terms."""

    target: str
    label: str  # the target's implementation in a sentence: "nn.GRU", "the ONNX GRU"...
    reset_after: tuple[bool, ...]  # conventions it computes; the first is the fallback
    gate_activations: dict[str, Activation]  # recurrent activation (reset and update gates)
    candidate_activations: dict[str, Activation]
    recurrent_bias: dict[bool, bool]  # per reset convention: holds a recurrent bias per gate?
    optional_bias: bool  # can say "no bias" (otherwise zeros are written)
    # canonical -> (canonical the target has, factor on the gate's pre-activation): exact rewrites
    equivalents: dict[str, tuple[str, float]] = field(default_factory=dict)
    written_dtype: dict[str, str] = field(default_factory=dict)  # source dtype -> written dtype
    dtype_notes: dict[str, Finding] = field(default_factory=dict)
    keeps_source_biases: bool = False  # writes the source's blocks as they are: an absent bias stays absent


@dataclass
class CellPlan:
    """How one cell becomes the target: the target's reset convention and activations, the
    factor on each gate's pre-activation, the gates whose recurrent bias moves to the input side."""

    verdict: Verdict
    reset_after: bool
    recurrent_activation: str
    activation: str
    scale: dict[str, float]
    move_recurrent_bias: set[str]
    use_bias: bool
    dtype: str

    @property
    def transforms_values(self) -> bool:
        return bool(self.move_recurrent_bias) or any(s != 1.0 for s in self.scale.values())


ZERO_BIAS_SHORT = "zero biases"


def make_plan(conv: Convention, caps: Capabilities) -> CellPlan:
    """The verdict and the mapping of a cell with convention ``conv`` into ``caps``' target."""
    verdict = Verdict()
    scale = {g: 1.0 for g in GATES}
    acts: dict[str, str] = {}
    if conv.reset_after in caps.reset_after:
        reset_after = conv.reset_after
    else:
        reset_after = caps.reset_after[0]
        if reset_after:
            verdict.reasons.append(Finding(
                "reset before",
                f"{caps.label} applies the reset gate after the recurrent matmul, r * (h U_h + b), and this cell "
                "applies it before, (r * h) U_h (reset_after=False); no choice of weights turns one into the other"))
            verdict.approximation.append(Finding(
                "reset after, same weights",
                "the same weights with the reset gate applied after the recurrent matmul"))
        else:
            verdict.reasons.append(Finding(
                "reset after",
                f"{caps.label} applies the reset gate before the recurrent matmul, (r * h) U_h, and this cell "
                "applies it after, r * (h U_h + b) (reset_after=True); no choice of weights turns one into the other"))
            verdict.approximation.append(Finding(
                "reset before, same weights",
                "the same weights with the reset gate applied before the recurrent matmul; "
                "the candidate's recurrent bias is added to its input bias"))

    if conv.recurrent_activation is None or conv.activation is None:
        verdict.add_note(Finding(
            "activations assumed",
            "the file does not record the activations; sigmoid (gates) and tanh (candidate) are assumed, "
            "the default since Keras 2.3 (Keras up to 2.2.5 defaulted to hard_sigmoid: check the model's code)"))
    for slot, source_name in (("recurrent", conv.recurrent_activation), ("candidate", conv.activation)):
        name = source_name or DEFAULTS[slot]
        table = caps.gate_activations if slot == "recurrent" else caps.candidate_activations
        where = "gates" if slot == "recurrent" else "candidate"
        if name in table:
            acts[slot] = name
            if table[name].note is not None:
                verdict.add_note(table[name].note)
        elif name in caps.equivalents:
            target_name, factor = caps.equivalents[name]
            acts[slot] = target_name
            for gate in GATE_SLOTS[slot]:
                scale[gate] = factor
            verdict.add_note(Finding(
                f"{SHORT.get(name, name)} as {SHORT.get(target_name, target_name)} of {factor:g}x",
                f"{caps.label} has no {display(name)}; {display(target_name)} of {factor:g} times the "
                f"pre-activation is the same function, so the {where}' kernels and biases are scaled by {factor:g}"))
        else:
            have = ", ".join(sorted(table))
            verdict.reasons.append(Finding(
                SHORT.get(name, name),
                f"{caps.label} has no {display(name)} for the {where} (it has {have})"))
            if name in HARD_SIGMOID_SLOPE and "sigmoid" in table:
                factor = 4.0 * HARD_SIGMOID_SLOPE[name]
                acts[slot] = "sigmoid"
                for gate in GATE_SLOTS[slot]:
                    scale[gate] = factor
                verdict.approximation.append(Finding(
                    f"sigmoid({factor:.4g}x)",
                    f"{display(name)} replaced by sigmoid of {factor:.4g} times the pre-activation "
                    f"(same value and slope at 0): the {where}' kernels and biases are scaled by {factor:.4g}"))
            else:
                acts[slot] = DEFAULTS[slot]
                verdict.approximation.append(Finding(
                    f"{DEFAULTS[slot]} for {name}", f"{display(name)} replaced by {DEFAULTS[slot]}"))

    holds_rb = caps.recurrent_bias[reset_after]
    move: set[str] = set()
    exact_moves: list[str] = []
    for gate in sorted(conv.recurrent_bias_present, key=GATES.index):
        if gate != "candidate":
            # Outside every product with r: adding it to the input bias is the same sum.
            if not holds_rb:
                move.add(gate)
                exact_moves.append(gate)
            continue
        source_inside_r = conv.reset_after  # r * (h U + rb) versus (r * h) U + rb
        target_inside_r = reset_after
        if holds_rb and source_inside_r == target_inside_r:
            continue
        move.add(gate)
        if not source_inside_r:
            exact_moves.append(gate)
        elif reset_after == conv.reset_after:
            verdict.reasons.append(Finding(
                "candidate recurrent bias",
                f"{caps.label} has no recurrent bias inside the reset product r * (h U_h + b_hn)"))
    if exact_moves:
        verdict.add_note(Finding(
            "biases summed",
            f"the input and recurrent biases of the {', '.join(exact_moves)} gate(s) are added into one bias "
            "(same function)"))
    if conv.biases == "summed" and holds_rb and not caps.keeps_source_biases:
        verdict.add_note(Finding(
            "summed r/z biases as (sum, 0)",
            "the source stored the reset/update input and recurrent biases already summed (CudnnCompatibleGRUCell): "
            "the sums are written as input biases and the recurrent ones as zeros; same function, but the original "
            "split cannot be recovered"))
    use_bias = conv.biases != "none" or not caps.optional_bias
    if conv.biases == "none" and not caps.optional_bias:
        verdict.add_note(Finding(ZERO_BIAS_SHORT, f"the source has no biases; {caps.label} needs them, so zeros are written"))
    if conv.biases == "partial" and not caps.keeps_source_biases:
        verdict.add_note(Finding("missing biases as zeros", "biases missing for some gates are written as zeros"))

    dtype = caps.written_dtype.get(conv.dtype, conv.dtype)
    if conv.dtype in caps.dtype_notes:
        verdict.add_note(caps.dtype_notes[conv.dtype])
    return CellPlan(verdict, reset_after, acts["recurrent"], acts["candidate"], scale, move, use_bias, dtype)


def apply_plan(plan: CellPlan, blocks: dict, input_size: int, units: int) -> dict[tuple[str, str], np.ndarray]:
    """The source's canonical blocks rewritten for the target: float64, all twelve roles present."""
    out: dict[tuple[str, str], np.ndarray] = {}
    zero_shape = {"input_kernel": (input_size, units), "recurrent_kernel": (units, units),
                  "bias": (units,), "recurrent_bias": (units,)}
    for gate in GATES:
        for role, shape in zero_shape.items():
            values = blocks.get((gate, role))
            out[(gate, role)] = np.zeros(shape) if values is None else np.asarray(values, dtype=np.float64) * plan.scale[gate]
        if gate in plan.move_recurrent_bias:
            out[(gate, "bias")] = out[(gate, "bias")] + out[(gate, "recurrent_bias")]
            out[(gate, "recurrent_bias")] = np.zeros(units)
    return out


# ------------------------------------------------------------------------------------ layers

# TF1 fw/bw scopes; ONNX GRU cells are `<node>/forward`, `<node>/backward` (layouts/onnx_gru.py).
_FWBW = {"fw": "forward", "bw": "backward", "forward": "forward", "backward": "backward"}
_KERAS_DIRECTION = re.compile(r"(forward|backward)_(.+)")
_TORCH_DIRECTION = re.compile(r"(l\d+)(_reverse)?")  # layouts/pytorch_gru.py names: gru/l1, gru/l1_reverse


def direction_key(name: str) -> tuple[str | None, str | None]:
    """(name with its direction part blanked, "forward"/"backward"), or (None, None).

    TF1: ``bidirectional_rnn/fw/gru_cell``; Keras Bidirectional: ``bidi/forward_gru``; PyTorch
    ``encoder.gru/l1`` and ``encoder.gru/l1_reverse``.
    """
    parts = name.split("/")
    match = _TORCH_DIRECTION.fullmatch(parts[-1])
    if match:
        return "/".join(parts[:-1] + [match.group(1) + "_<dir>"]), "backward" if match.group(2) else "forward"
    for i in range(len(parts) - 1, -1, -1):
        part = parts[i]
        if part in _FWBW:
            return "/".join(parts[:i] + ["<dir>"] + parts[i + 1:]), _FWBW[part]
        match = _KERAS_DIRECTION.fullmatch(part)
        if match:
            return "/".join(parts[:i] + ["<dir>_" + match.group(2)] + parts[i + 1:]), match.group(1)
    return None, None


@dataclass
class Layer:
    """A cell, or a forward/backward pair of cells, that becomes one layer of the target.

    ``reverse`` is true for a lone cell that reads its sequence backwards (a Keras layer with
    ``go_backwards``, or one half of a pair chosen alone).
    """

    index: int
    cells: list[GruCell]
    reverse: bool = False

    @property
    def bidirectional(self) -> bool:
        return len(self.cells) == 2

    @property
    def input_size(self) -> int:
        return self.cells[0].input_size

    @property
    def units(self) -> int:
        return self.cells[0].units

    @property
    def directions(self) -> list[str]:
        if self.bidirectional:
            return ["forward", "backward"]
        return ["backward" if self.reverse else "forward"]


def make_layers(cells: list[GruCell]) -> list[Layer]:
    """Cells in the order found, with forward/backward pairs joined into one bidirectional layer."""
    keyed = [direction_key(c.name) for c in cells]
    by_key: dict[str, list[int]] = {}
    for i, (key, _) in enumerate(keyed):
        if key is not None:
            by_key.setdefault(key, []).append(i)
    partner: dict[int, int] = {}
    for members in by_key.values():
        if len(members) != 2:
            continue
        a, b = members
        dirs = {keyed[a][1], keyed[b][1]}
        same = (cells[a].input_size, cells[a].units) == (cells[b].input_size, cells[b].units)
        if dirs == {"forward", "backward"} and same:
            fw, bw = (a, b) if keyed[a][1] == "forward" else (b, a)
            partner[fw], partner[bw] = bw, fw
    layers: list[Layer] = []
    done: set[int] = set()
    for i, cell in enumerate(cells):
        if i in done:
            continue
        if i in partner:
            fw, bw = (i, partner[i]) if keyed[i][1] == "forward" else (partner[i], i)
            layers.append(Layer(len(layers), [cells[fw], cells[bw]]))
            done.update((fw, bw))
            continue
        reverse = bool(cell.config.get("go_backwards")) or keyed[i][1] == "backward"
        layers.append(Layer(len(layers), [cell], reverse=reverse))
        done.add(i)
    return layers


# ------------------------------------------------------------------------------------ proof numbers

STEPS, BATCH = 7, 3
_RANK = {"bfloat16": 0, "float16": 1, "float32": 2, "float64": 3}


def sequences(layer: Layer, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Random inputs [T, batch, I] and one initial state per cell, exactly representable in float16."""
    rng = np.random.default_rng(seed + 1000 * layer.index)
    xs = rng.standard_normal((STEPS, BATCH, layer.input_size)).astype(np.float16).astype(np.float64)
    h0s = [np.clip(0.5 * rng.standard_normal((BATCH, layer.units)), -0.95, 0.95).astype(np.float16).astype(np.float64)
           for _ in layer.cells]
    return xs, h0s


def reference(cell: GruCell, blocks: dict, xs: np.ndarray, h0: np.ndarray, *, reverse: bool) -> np.ndarray:
    """The source cell's states in float64, in the order it consumed ``xs`` (reversed when ``reverse``)."""
    seq = xs[::-1] if reverse else xs
    return run_gru(blocks, seq, h0, reset_after=cell.reset_after,
                   activation_name=cell.activation or DEFAULTS["candidate"],
                   recurrent_activation_name=cell.recurrent_activation or DEFAULTS["recurrent"],
                   clip=cell.config.get("clip") or 0.0)


def tolerance(plan: CellPlan, compute_dtype: str, cell: GruCell, ref: np.ndarray) -> float:
    """The error allowed for an exact conversion: the precision the target computed (or stored) in,
    grown with the width of the dot products and the size of the states."""
    precision = compute_dtype
    if plan.transforms_values and _RANK.get(plan.dtype, 2) < _RANK.get(precision, 2):
        precision = plan.dtype  # folded or scaled weights were rounded to the written dtype
    width = max(1.0, math.sqrt((cell.input_size + cell.units) / 32.0))
    size = max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    return TOLERANCES.get(precision, TOLERANCES["float32"])[0] * width * size


@dataclass
class CellRun:
    """What a target's implementation produced for one cell: states in consumption order."""

    outputs: np.ndarray
    reverse: bool
    compute_dtype: str
    implementation: str
    fallback_reason: str | None = None
    tolerance: float | None = None  # the bound a lossy (quantized) cell reported, instead of the dtype's


# ------------------------------------------------------------------------------------ mapped cells


@dataclass
class MappedCell:
    """One source cell in the target's terms: its plan, its blocks (float64, all roles), and the
    names it was written under (filled in by the target's ``write``)."""

    cell: GruCell
    plan: CellPlan
    blocks: dict
    direction: str
    written_as: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)  # target-specific fields for the cell's conversion.json entry


@dataclass
class MappedLayer:
    layer: Layer
    cells: list[MappedCell]

    @property
    def dtype(self) -> str:
        return self.cells[0].plan.dtype


def cat(blocks: dict, gates: tuple[str, ...], role: str) -> np.ndarray:
    """The blocks of ``role`` for ``gates`` side by side (last axis), as a target stores them."""
    return np.concatenate([blocks[(g, role)] for g in gates], axis=-1)
