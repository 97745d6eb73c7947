"""The canonical GRU cell: every fused tensor cut into named gate x role blocks.

Blocks are in ``x @ W`` orientation (docs/conventions.md, "Canonical blocks"):
``input_kernel`` [input_size, units], ``recurrent_kernel`` [units, units], ``bias`` and
``recurrent_bias`` [units]. Each block records where it lives in the stored tensor, so the split
can be undone exactly (:func:`gruinspect.blocks.fuse`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

GATES = ("reset", "update", "candidate")
ROLES = ("input_kernel", "recurrent_kernel", "bias", "recurrent_bias")

# Names people use in code (docs/conventions.md; PyTorch-style b_h* for the recurrent biases).
CODE_NAMES = {
    ("reset", "input_kernel"): "W_r", ("update", "input_kernel"): "W_z", ("candidate", "input_kernel"): "W_h",
    ("reset", "recurrent_kernel"): "U_r", ("update", "recurrent_kernel"): "U_z", ("candidate", "recurrent_kernel"): "U_h",
    ("reset", "bias"): "b_r", ("update", "bias"): "b_z", ("candidate", "bias"): "b_h",
    ("reset", "recurrent_bias"): "b_hr", ("update", "recurrent_bias"): "b_hz", ("candidate", "recurrent_bias"): "b_hn",
}


# Blocks and their sources are NamedTuples (immutable, `_replace` to change): a dataclass compiles
# its methods at import, which `list` would pay for (gruinspect/store.py).
class BlockSource(NamedTuple):
    """Where a block sits in a stored tensor: ``stored[index]``, then ``transform`` if any.

    ``index`` is a ``(start, stop)`` pair per stored dimension. ``transform`` names an entry of
    a layout spec's ``transforms`` (:func:`gruinspect.layouts.transform`) for blocks that are not
    plain slices.
    """

    tensor: str
    index: tuple[tuple[int, int], ...]
    transform: str | None = None

    @property
    def slice_text(self) -> str:
        return "[" + ", ".join(f"{a}:{b}" for a, b in self.index) + "]"

    def describe(self) -> str:
        text = f"{self.tensor}{self.slice_text}"
        return f"{text} ({self.transform})" if self.transform else text

    def to_json(self) -> dict:
        out = {"tensor": self.tensor, "slice": self.slice_text}
        if self.transform:
            out["transform"] = self.transform
        return out


class Block(NamedTuple):
    """One named block of a cell: ``gate`` x ``role``, its canonical ``shape`` and where it is stored."""

    gate: str
    role: str
    shape: tuple[int, ...]
    source: BlockSource

    @property
    def key(self) -> str:
        return f"{self.gate}_{self.role}"

    @property
    def code_name(self) -> str:
        return CODE_NAMES[(self.gate, self.role)]


class GruCell:
    """One GRU cell found in a file.

    ``tensors`` maps the layout's own role names (``gates/kernel``, ``kernel``...) to stored tensor
    names; ``shapes`` gives each stored tensor's shape. ``activation`` and
    ``recurrent_activation`` are canonical names from :data:`gruinspect.gru.ACTIVATIONS`, or None
    when the file does not say and the layout has no fixed default; ``config_source`` says which.
    ``regions`` gives the part of a stored tensor this cell owns when cells share it, as a
    (start, stop) pair per dimension (one direction of an ONNX bidirectional GRU node: W[d]);
    absent = all of it. ``replace(**changes)`` gives a copy with some fields changed.

    A plain class, not a dataclass: a dataclass compiles its methods when `list` imports it.
    """

    FIELDS = ("name", "layout", "input_size", "units", "reset_after", "dtype", "tensors", "shapes", "blocks",
              "activation", "recurrent_activation", "config_source", "config", "notes", "regions")

    def __init__(self, name: str, layout: str, input_size: int, units: int, reset_after: bool, dtype: str,
                 tensors: dict[str, str], shapes: dict[str, tuple[int, ...]], blocks: list[Block],
                 activation: str | None = "tanh", recurrent_activation: str | None = "sigmoid",
                 config_source: str = "layout default", config: dict | None = None, notes: list[str] | None = None,
                 regions: dict[str, tuple[tuple[int, int], ...]] | None = None) -> None:
        self.name, self.layout, self.input_size, self.units = name, layout, input_size, units
        self.reset_after, self.dtype, self.tensors, self.shapes, self.blocks = reset_after, dtype, tensors, shapes, blocks
        self.activation, self.recurrent_activation, self.config_source = activation, recurrent_activation, config_source
        self.config: dict = {} if config is None else config
        self.notes: list[str] = [] if notes is None else notes
        self.regions: dict[str, tuple[tuple[int, int], ...]] = {} if regions is None else regions
        self.blocks.sort(key=lambda b: (GATES.index(b.gate), ROLES.index(b.role)))

    def replace(self, **changes) -> GruCell:
        """A copy with ``changes`` applied; lists and dicts not changed are shared with this cell."""
        return GruCell(**{**{f: getattr(self, f) for f in self.FIELDS}, **changes})

    def __eq__(self, other) -> bool:
        if not isinstance(other, GruCell):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    __hash__ = None  # mutable: not hashable

    def __repr__(self) -> str:
        return (f"GruCell(name={self.name!r}, layout={self.layout!r}, input_size={self.input_size}, "
                f"units={self.units}, reset_after={self.reset_after}, dtype={self.dtype!r})")

    @property
    def has_bias(self) -> bool:
        return any(b.role in ("bias", "recurrent_bias") for b in self.blocks)

    @property
    def parameters(self) -> int:
        return sum(math.prod(self.owned_shape(t)) for t in self.shapes)

    def owned_shape(self, tensor: str) -> tuple[int, ...]:
        """The shape of the part of ``tensor`` this cell owns (see ``regions``)."""
        region = self.regions.get(tensor)
        return self.shapes[tensor] if region is None else tuple(b - a for a, b in region)

    def block(self, gate: str, role: str) -> Block | None:
        for b in self.blocks:
            if b.gate == gate and b.role == role:
                return b
        return None

    def summary(self) -> dict:
        """The JSON shape of a cell in `list` and in the split manifest (docs/contracts.md)."""
        return {
            "name": self.name,
            "layout": self.layout,
            "input_size": self.input_size,
            "units": self.units,
            "reset_after": self.reset_after,
            "dtype": self.dtype,
            "parameters": self.parameters,
            "use_bias": self.has_bias,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "config_source": self.config_source,
            "config": self.config,
            "tensors": {role: {"name": t, "shape": list(self.shapes[t])} for role, t in self.tensors.items()},
            "notes": self.notes,
        }


def stacked_blocks(tensor: str, *, gates: tuple[str, ...], units: int, rows: list[tuple[str, int, int]],
                   ncols_before: int = 0) -> list[Block]:
    """Blocks of a 2-D kernel whose columns are gates side by side and whose rows are role bands.

    ``rows`` lists ``(role, start, stop)``; gate ``k`` of ``gates`` takes columns
    ``[ncols_before + k*units, ncols_before + (k+1)*units)``. Used for TF's [x; h] kernels and
    for Keras kernels alike.
    """
    out = []
    for k, gate in enumerate(gates):
        c0 = ncols_before + k * units
        for role, r0, r1 in rows:
            out.append(Block(gate, role, (r1 - r0, units), BlockSource(tensor, ((r0, r1), (c0, c0 + units)))))
    return out


def vector_blocks(tensor: str, *, gates: tuple[str, ...], units: int, role: str,
                  row: int | None = None) -> list[Block]:
    """Blocks of a bias vector holding gates side by side (``row`` picks a row of a 2-D bias)."""
    out = []
    for k, gate in enumerate(gates):
        span = (k * units, (k + 1) * units)
        index = (span,) if row is None else ((row, row + 1), span)
        out.append(Block(gate, role, (units,), BlockSource(tensor, index)))
    return out
