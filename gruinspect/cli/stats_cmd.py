from __future__ import annotations

import click

from .. import render
from ..stats import compute_stats
from . import warn_each
from .multi import jsonl_option, paths_argument, run_paths
from .options import cell_option, common_options


@click.command("stats")
@paths_argument
@cell_option
@click.option("--health", is_flag=True,
              help="Also the health figures of each cell: memory timescale, reset openness, spectral norms, "
                   "saturation, dead and frozen units, equal bias pairs.")
@jsonl_option
@common_options
@click.pass_context
def stats_command(ctx, paths, patterns, health, as_json, jsonl):
    """Statistics of every gate block: mean, std, min, max, L2 norm, zeros, NaN/Inf.

    Tensors are streamed: only one fused tensor is in memory at a time (with --health, one cell's
    blocks are, to run its equations).

    Several PATHs run one after the other: with --json one document {"files": [{"path",
    "exit_code", "result" or "error"}], "exit_code"} (one PATH prints its result alone, as
    always), with --jsonl one such entry per line; the exit code is the worst of them.
    """
    run_paths(ctx, paths, lambda path, structured, emit: _stats_one(path, patterns, health, structured, emit),
              as_json=as_json, jsonl=jsonl)


def _stats_one(path, patterns, health, as_json, emit=True):
    with render.Progress("Reading") as progress:
        report = compute_stats(path, patterns, progress=progress)
    warn_each(report.problems)  # on stderr with --json too: the stats JSON has no problems field
    figures = {}
    if health:
        from ..health import compute_health

        with render.Progress("Health") as progress:
            figures = {id(c.cell): h for c, h in zip(report.cells, compute_health(path, patterns, progress)[1])}
    if as_json:
        out = report.to_json()
        for entry, cs in zip(out["cells"], report.cells):
            if health:
                entry["health"] = figures[id(cs.cell)].to_json()
        if emit:
            render.emit_json(out)
        return out
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
        if health:
            render.text()
            render.table(["health figure", "value"], [list(row) for row in figures[id(cs.cell)].rows()])
    if not report.cells:
        render.text(f"No GRU cell in {path}.")
