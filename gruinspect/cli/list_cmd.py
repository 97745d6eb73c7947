from __future__ import annotations

import click

from .. import render
from ..listing import list_cells
from ..layouts._common import is_optimizer_slot
from .options import common_options, path_argument


@click.command("list")
@path_argument
@click.option("--all", "all_tensors", is_flag=True, help="Also list every other tensor with its shape and dtype.")
@click.option("--long", "long", is_flag=True, help="Also show, per cell, which slice of which stored tensor each block is.")
@common_options
def list_command(path, all_tensors, long, as_json):
    """List the GRU cells in PATH: layout, sizes, dtype. Reads no tensor data.

    \b
    Example:
      gruinspect list model.ckpt --long
    """
    inventory = list_cells(path)
    if as_json:
        render.emit_json(inventory.to_json(all_tensors=all_tensors))
        return
    for problem in inventory.problems:
        render.warn(problem)
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
