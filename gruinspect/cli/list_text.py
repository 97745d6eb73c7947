"""What `gruinspect list` prints for each PATH, for the click command and for
:func:`gruinspect.cli.entry`'s plain ``list PATH...`` alike (this module imports no click)."""
from __future__ import annotations

from .. import render
from ..layouts._common import is_optimizer_slot
from ..listing import list_cells
from . import warn_each
from .multi import paths_code


def list_paths(paths: list[str]) -> int:
    """``gruinspect list PATH...`` with no option; returns the exit code (as the click command)."""
    def one(path, structured, emit):
        return list_one(path, False, False, structured, emit)

    return paths_code(None, paths, one, as_json=False, jsonl=False) or 0


def list_one(path, all_tensors, long, as_json, emit=True):
    inventory = list_cells(path)
    if as_json:
        data = inventory.to_json(all_tensors=all_tensors)
        if emit:
            render.emit_json(data)
        return data
    warn_each(inventory.problems)
    if inventory.cells:
        render.table(
            ["cell", "layout", "input", "units", "reset_after", "dtype", "params", "activations"],
            [[c.name, c.layout, c.input_size, c.units, "yes" if c.reset_after else "no", c.dtype, c.parameters,
              f"{c.recurrent_activation or '?'} / {c.activation or '?'}"] for c in inventory.cells],
            right={2, 3, 6},
        )
    if long:
        for c in inventory.cells:
            render.text()
            render.table(["block", "name", "shape", "source"],
                         [[f"{b.gate} {b.role}", b.code_name, "x".join(map(str, b.shape)), b.source.describe()]
                          for b in c.blocks], title=f"{c.name} ({c.layout})")
            for note in c.notes:
                render.text(f"note: {note}")
    others = inventory.other_tensors()
    if all_tensors and others:
        render.text()
        render.table(["tensor", "shape", "dtype"],
                     [[t.name, "[" + ", ".join(map(str, t.shape)) + "]", t.dtype] for t in others])
    params = sum(c.parameters for c in inventory.cells)
    slots = sum(1 for t in others if is_optimizer_slot(t.name))
    render.text(f"{plural(len(inventory.cells), 'GRU cell')} ({params:,} parameters), "
                f"{plural(len(others) - slots, 'other tensor')} and {plural(slots, 'optimizer slot')} "
                f"in {path} [{inventory.format}]")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
