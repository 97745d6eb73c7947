"""What a GRU convention is, in one object: every command asks a layout's :class:`LayoutSpec`.

A layout module (one per convention, listed in :data:`gruinspect.layouts.LAYOUTS`) declares
``SPEC = LayoutSpec(...)`` next to the code that finds its cells. Everything the convention means
sits there: where its tensors are (``find_cells``), its float64 equations on the fused tensors,
how its framework runs it (``oracle``), which activations it has when the file does not say, and
the rows it adds to the convert verdict table. ``verify``, ``convert``, ``diff`` and ``blocks``
look these up; nothing outside ``layouts/`` compares a layout name.

Functions are named by :class:`Ref` (``"package.module:function"``) and imported on first use,
so ``gruinspect list`` imports neither numpy nor any framework.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple


class Activations(NamedTuple):
    """A cell's two activations by canonical name (keys of :data:`gruinspect.maths.ACTIVATIONS`)."""

    activation: str            # candidate (TF's c, Keras' h, PyTorch's n)
    recurrent_activation: str  # reset and update gates


class Ref(NamedTuple):
    """A function named ``"package.module:attribute"``, imported only when first called."""

    path: str

    def resolve(self) -> Callable[..., Any]:
        module, _, attr = self.path.partition(":")
        return getattr(importlib.import_module(module), attr)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)


class Oracle(NamedTuple):
    """The framework's own implementation of the convention, for ``verify``.

    ``run(cell, tensors, xs, h0, acts) -> gruinspect.oracle.OracleRun``: ``tensors`` are the
    cell's stored tensors by layout role (``cell.tensors`` keys) as read from the file, ``xs``
    [T, batch, I] and ``h0`` [batch, H] in the cell's dtype, ``acts`` an :class:`Activations`.
    It may raise :class:`gruinspect.oracle.NotExpressible` when the framework cell cannot hold
    this cell's configuration. ``needs`` lists the top-level modules it imports (checked
    without importing them); ``needs_for(cell)``, when given, replaces ``needs`` per cell.
    """

    run: Ref
    needs: tuple[str, ...]
    needs_for: Ref | None = None
    install: str = "pip install 'gruinspect[tf]'"

    def modules(self, cell) -> tuple[str, ...]:
        return tuple(self.needs_for(cell)) if self.needs_for is not None else self.needs


class ConventionRow(NamedTuple):
    """One row this layout contributes to the convert verdict table (README)."""

    reset_after: bool
    recurrent_activation: str | None
    activation: str | None
    biases: str  # a key of gruinspect.convert._common.BIAS_SETS: none, one, two, summed
    seen_in: str


class LayoutSpec:
    """Everything one GRU convention means.

    ``find_cells(store, claimed, problems) -> [GruCell]`` finds its cells among the tensors not
    yet ``claimed`` and appends a sentence to ``problems`` for GRU-like tensors that do not fit.
    ``equations(cell, tensors, xs, h0, acts) -> hs`` is an independent float64 reading of the
    fused tensors (``tensors`` by layout role, float64; every state [T, batch, H]) that never
    looks at the cell's blocks; ``equations_source`` cites where those equations come from
    (a ``docs/`` file or the framework source). ``oracle`` is None only with a
    ``no_oracle_reason``. ``samples`` names ``sample_checkpoints/`` folders holding such a cell.
    ``transforms`` maps a :class:`gruinspect.cell.BlockSource` transform name to
    ``(stored slice -> block, block -> stored slice)`` refs, for blocks that are not plain slices.

    Immutable; ``replace(**changes)`` gives a changed copy. A plain class, not a dataclass, for
    `list`'s start-up (gruinspect/store.py).
    """

    FIELDS = ("name", "title", "find_cells", "equations", "equations_source", "oracle", "no_oracle_reason",
              "default_activations", "conventions", "samples", "transforms")
    __slots__ = FIELDS

    def __init__(self, name: str, title: str, find_cells: Ref, equations: Ref, equations_source: str,
                 oracle: Oracle | None = None, no_oracle_reason: str | None = None,
                 default_activations: Activations = Activations("tanh", "sigmoid"),
                 conventions: tuple[ConventionRow, ...] = (), samples: tuple[str, ...] = (),
                 transforms: dict[str, tuple[Ref, Ref]] | None = None) -> None:
        if (oracle is None) == (no_oracle_reason is None):
            raise ValueError(f"layout {name}: give an oracle or a no_oracle_reason, exactly one")
        values = (name, title, find_cells, equations, equations_source, oracle, no_oracle_reason,
                  default_activations, tuple(conventions), tuple(samples), dict(transforms or {}))
        for key, value in zip(self.FIELDS, values):
            object.__setattr__(self, key, value)

    def __setattr__(self, key, value) -> None:
        raise AttributeError(f"a LayoutSpec is immutable; use replace({key}=...)")

    def replace(self, **changes) -> LayoutSpec:
        return LayoutSpec(**{**{f: getattr(self, f) for f in self.FIELDS}, **changes})

    def __eq__(self, other) -> bool:
        if not isinstance(other, LayoutSpec):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    __hash__ = None  # holds a dict

    def __repr__(self) -> str:
        return f"LayoutSpec(name={self.name!r}, title={self.title!r})"
