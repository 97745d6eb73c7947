"""Which cell of B is which cell of A: by name, else by order and shape, or as the user says."""
from __future__ import annotations

from collections.abc import Iterable

from ..cell import GruCell
from ..errors import UsageError


def parse_pairs(texts: Iterable[str]) -> list[tuple[str, str]]:
    """``["CELL_A=CELL_B", ...]`` as name pairs; a missing ``=`` is a usage error."""
    out = []
    for text in texts:
        a, sep, b = text.partition("=")
        if not sep or not a or not b:
            raise UsageError(f"Invalid --pair {text!r}: write CELL_A=CELL_B, e.g. --pair rnn/gru_cell=gru.")
        out.append((a, b))
    return out


def pair_cells(cells_a: list[GruCell], cells_b: list[GruCell], pairs: Iterable[tuple[str, str]] | None = None
               ) -> tuple[list[tuple[GruCell, GruCell, str]], list[GruCell], list[GruCell]]:
    """``([(cell_a, cell_b, how)], unpaired_a, unpaired_b)``.

    ``pairs`` given: exactly those (every name must exist; a cell may appear in one pair only).
    Otherwise cells with the same name pair first (``how="name"``); the rest pair in file order,
    each A cell with the first unpaired B cell of the same (input_size, units) (``how="order"``).
    """
    by_a = {c.name: c for c in cells_a}
    by_b = {c.name: c for c in cells_b}
    if pairs:
        out = []
        used_a: set[str] = set()
        used_b: set[str] = set()
        for a, b in pairs:
            for name, cells, side in ((a, by_a, "A"), (b, by_b, "B")):
                if name not in cells:
                    known = ", ".join(cells) or "none"
                    raise UsageError(f"No cell {name!r} in {side}; its cells are: {known}.")
            if a in used_a or b in used_b:
                raise UsageError(f"Invalid --pair {a}={b}: each cell may be paired once.")
            used_a.add(a)
            used_b.add(b)
            out.append((by_a[a], by_b[b], "given"))
        return (out, [c for c in cells_a if c.name not in used_a], [c for c in cells_b if c.name not in used_b])

    paired: dict[str, tuple[GruCell, str]] = {}
    taken: set[str] = set()
    for cell in cells_a:
        if cell.name in by_b:
            paired[cell.name] = (by_b[cell.name], "name")
            taken.add(cell.name)
    rest_b = [c for c in cells_b if c.name not in taken]
    for cell in cells_a:
        if cell.name in paired:
            continue
        for other in rest_b:
            if (other.input_size, other.units) == (cell.input_size, cell.units):
                paired[cell.name] = (other, "order")
                rest_b.remove(other)
                break
    out = [(c, *paired[c.name]) for c in cells_a if c.name in paired]
    return out, [c for c in cells_a if c.name not in paired], rest_b
