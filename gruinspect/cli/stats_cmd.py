from __future__ import annotations

import click

from .. import render
from ..stats import compute_stats
from .options import cell_option, common_options, path_argument


@click.command("stats")
@path_argument
@cell_option
@common_options
def stats_command(path, patterns, as_json):
    """Statistics of every gate block: mean, std, min, max, L2 norm, zeros, NaN/Inf.

    Tensors are streamed: only one fused tensor is in memory at a time.
    """
    with render.Progress("Reading") as progress:
        report = compute_stats(path, patterns, progress=progress)
    if as_json:
        render.emit_json(report.to_json())
        return
    for i, cs in enumerate(report.cells):
        if i:
            render.text()
        c = cs.cell
        render.table(
            ["block", "shape", "mean", "std", "min", "max", "l2", "zeros", "nan/inf"],
            [[f"{b.gate} {b.role}", "x".join(map(str, b.shape)), b.mean, b.std, b.min, b.max, b.l2_norm,
              f"{b.zero_fraction:.1%}", f"{b.nan_count}/{b.inf_count}"] for b in cs.blocks],
            title=f"{c.name} ({c.layout}, {c.input_size}->{c.units}, {c.dtype})",
            right={2, 3, 4, 5, 6, 7},
        )
    if not report.cells:
        render.text(f"No GRU cell in {path}.")
