from __future__ import annotations

import click

from .. import render
from ..listing import list_cells
from ..layouts._common import is_optimizer_slot
from . import warn_each
from .multi import jsonl_option, paths_argument, run_paths
from .options import common_options


@click.command("list")
@paths_argument
@click.option("--all", "all_tensors", is_flag=True, help="Also list every other tensor with its shape and dtype.")
@click.option("--long", "long", is_flag=True, help="Also show, per cell, which slice of which stored tensor each block is.")
@jsonl_option
@common_options
@click.pass_context
def list_command(ctx, paths, all_tensors, long, as_json, jsonl):
    """List the GRU cells in PATH: layout, sizes, dtype. Reads no tensor data.

    Several PATHs are listed in one run: with --json one document {"files": [{"path",
    "exit_code", "result" or "error"}], "exit_code"} (one PATH prints its result alone, as
    always), with --jsonl one such entry per line. A file that cannot be read is one error line;
    the others are still listed, and the exit code is the worst of them.

    \b
    Examples:
      gruinspect list model.ckpt --long
      gruinspect list runs/*/model.ckpt --jsonl
    """
    run_paths(ctx, paths, lambda path, structured, emit: _list_one(path, all_tensors, long, structured, emit),
              as_json=as_json, jsonl=jsonl)


def _list_one(path, all_tensors, long, as_json, emit=True):
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
