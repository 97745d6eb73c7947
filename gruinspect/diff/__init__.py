"""`diff`: why two GRUs are close but not equal.

The cells of two files are paired (:mod:`.pairing`), compared block by block and by output on one
seeded sequence (:mod:`.compare`), and, when they differ, the porting mistakes that turn A into
B are searched (:mod:`.search`) and put into words (:mod:`.findings`). Verdicts (docs/contracts.md,
diff): ``identical`` (every block bit-equal, same configuration), ``equivalent``
(the same function), ``explained`` (B is A after the mistakes the findings name), ``different``.

>>> report = diff("model.h5", "port/model.safetensors")          # doctest: +SKIP
>>> [(p.verdict, [f.code for f in p.findings]) for p in report.pairs]   # doctest: +SKIP
[('explained', ['gates_swapped'])]
>>> report.exit_code                                               # doctest: +SKIP
1
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field

import numpy as np

from ..blocks import read_blocks
from ..cell import GruCell
from ..errors import ExitCode
from ..inventory import Inventory, open_cells
from ..store import TensorStore
from .compare import (block_rows, equivalence_notes, finer_dtype, finite, identical, make_sides, outputs_close,
                      probe, run_side, tolerance_for)
from .findings import Finding, config_findings, dtype_findings, explanation_findings, values_finding
from .pairing import pair_cells, parse_pairs
from .search import explain

VERDICTS = ("identical", "equivalent", "explained", "different")

__all__ = ["diff", "diff_stores", "diff_cells", "DiffReport", "PairReport", "Finding", "VERDICTS", "parse_pairs"]


@dataclass
class PairReport:
    """One cell of A against its counterpart in B."""

    a: GruCell
    b: GruCell
    paired_by: str
    verdict: str
    findings: list[Finding]
    blocks: list[dict]
    output_max_abs: float | None
    tolerance: dict
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict in ("identical", "equivalent")

    def to_json(self) -> dict:
        return {
            "a": self.a.name, "b": self.b.name, "paired_by": self.paired_by, "verdict": self.verdict,
            "findings": [f.to_json() for f in self.findings], "blocks": self.blocks,
            "output_max_abs": self.output_max_abs, "tolerance": self.tolerance, "notes": self.notes,
            "config": {side: {"layout": c.layout, "input_size": c.input_size, "units": c.units, "dtype": c.dtype,
                              "reset_after": c.reset_after, "activation": c.activation,
                              "recurrent_activation": c.recurrent_activation}
                       for side, c in (("a", self.a), ("b", self.b))},
        }


@dataclass
class DiffReport:
    a: dict
    b: dict
    pairs: list[PairReport]
    unpaired_a: list[str]
    unpaired_b: list[str]
    problems: list[str] = field(default_factory=list)
    paired_by_hand: bool = False

    @property
    def exit_code(self) -> int:
        """0 when every pair is identical or equivalent and no cell is unpaired (cells left out of
        pairs given by hand do not count: the user chose what to compare), else 1."""
        unpaired = (self.unpaired_a or self.unpaired_b) and not self.paired_by_hand
        ok = all(p.passed for p in self.pairs) and not unpaired
        return int(ExitCode.OK if ok else ExitCode.CHECK_FAILED)

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "pairs": [p.to_json() for p in self.pairs],
                "unpaired_a": self.unpaired_a, "unpaired_b": self.unpaired_b, "paired_by_hand": self.paired_by_hand,
                "problems": self.problems, "exit_code": self.exit_code}


def diff_cells(cell_a: GruCell, blocks_a: dict, cell_b: GruCell, blocks_b: dict, *, atol: float | None = None,
               seed: int = 0, paired_by: str = "given") -> PairReport:
    """Compare two cells given their blocks (``{(gate, role): array}``, as :func:`read_blocks` gives)."""
    a, b, notes = make_sides(cell_a, blocks_a, cell_b, blocks_b)
    rows = block_rows(a, b)
    dtype = finer_dtype(cell_a.dtype, cell_b.dtype)
    if (cell_a.input_size, cell_a.units) != (cell_b.input_size, cell_b.units):
        finding = Finding("values", f"A's cell maps {cell_a.input_size} inputs to {cell_a.units} units and B's "
                          f"{cell_b.input_size} to {cell_b.units}: they cannot hold the same GRU. Use --pair to "
                          f"name B's counterpart of {cell_a.name}.")
        return PairReport(cell_a, cell_b, paired_by, "different", [finding], rows, None, {"dtype": dtype}, notes)
    tol = tolerance_for(dtype, atol)
    if identical(a, b):  # the same numbers in the same equations: the same outputs, unless a block holds NaN
        nan = any(np.isnan(v).any() for v in a.values.values())
        return PairReport(cell_a, cell_b, paired_by, "identical", [], rows, None if nan else 0.0, tol, notes)
    xs, h0 = probe(cell_a, seed)
    ha, hb = run_side(a, xs, h0), run_side(b, xs, h0)
    same_output = outputs_close(ha, hb, tol)
    output_max_abs = finite(float(abs(hb - ha).max()))
    exp = explain(a, b, atol)
    if same_output:
        findings = explanation_findings(a, b, exp) if exp else dtype_findings(a, b, None)
        notes += equivalence_notes(a, b)
        return PairReport(cell_a, cell_b, paired_by, "equivalent", findings, rows, output_max_abs, tol, notes)
    if exp is not None:
        findings = explanation_findings(a, b, exp)
        if any(f.changes_function for f in findings):
            return PairReport(cell_a, cell_b, paired_by, "explained", findings, rows, output_max_abs, tol, notes)
    findings = [values_finding(rows)] + config_findings(a, b)
    return PairReport(cell_a, cell_b, paired_by, "different", findings, rows, output_max_abs, tol, notes)


def diff_stores(store_a: TensorStore, inventory_a: Inventory, store_b: TensorStore, inventory_b: Inventory, *,
                pairs: Iterable[tuple[str, str]] | None = None, atol: float | None = None, seed: int = 0
                ) -> DiffReport:
    """:func:`diff` on files already open (``open_cells`` gives the store and inventory of each)."""
    pairs = list(pairs or ())
    paired, rest_a, rest_b = pair_cells(inventory_a.cells, inventory_b.cells, pairs)
    reports = [diff_cells(ca, read_blocks(store_a, ca), cb, read_blocks(store_b, cb), atol=atol, seed=seed,
                          paired_by=how) for ca, cb, how in paired]
    problems = [f"A: {p}" for p in inventory_a.problems_now()] + [f"B: {p}" for p in inventory_b.problems_now()]
    return DiffReport(inventory_a.source, inventory_b.source, reports, [c.name for c in rest_a],
                      [c.name for c in rest_b], problems, paired_by_hand=bool(pairs))


def diff(a_path: str, b_path: str, *, pairs: Iterable[tuple[str, str]] | None = None, atol: float | None = None,
         seed: int = 0) -> DiffReport:
    """Pair the GRU cells of two files, compare them and explain each difference; never prints.

    ``pairs`` lists ``(cell of A, cell of B)`` to compare instead of pairing by name, then order and
    shape; cells it leaves out are listed as unpaired but do not make the exit code 1. ``atol`` replaces the tolerance of the cells' dtype, for blocks and outputs alike.
    ``seed`` picks the input sequence both cells are run on.
    """
    with ExitStack() as stack:
        store_a, inventory_a = stack.enter_context(open_cells(a_path))
        store_b, inventory_b = stack.enter_context(open_cells(b_path))
        return diff_stores(store_a, inventory_a, store_b, inventory_b, pairs=pairs, atol=atol, seed=seed)
