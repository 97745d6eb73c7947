from __future__ import annotations

import sys

import click

from .. import render
from . import warn_each
from .options import common_options


@click.command("diff")
@click.argument("a_path", metavar="A", type=click.Path(path_type=str))
@click.argument("b_path", metavar="B", type=click.Path(path_type=str))
@click.option("--pair", "pair_texts", multiple=True, metavar="CELL_A=CELL_B",
              help="Compare these two cells (repeatable) instead of pairing by name, then by order and shape; "
                   "cells left out are listed but do not fail the exit code.")
@click.option("--atol", type=float, metavar="X",
              help="Absolute tolerance for blocks and outputs (default by the finer dtype of the two cells: "
                   "float64 1e-10, float32 1e-5, float16 1e-2, bfloat16 5e-2 on outputs; a few units in the last "
                   "place on blocks).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the input sequence both cells run on.")
@click.option("--blocks", "show_blocks", is_flag=True,
              help="Show the per-block differences of every pair, not only of pairs nothing explains.")
@common_options
def diff_command(a_path, b_path, pair_texts, atol, seed, show_blocks, as_json):
    """Say why the GRU cells of A and B differ: pair them, compare, and name the porting mistake.

    Each pair of cells is compared block by block and by output (both run by the reference
    equations with their own configuration on one seeded sequence), then gets a verdict:
    identical (bit-equal blocks, same configuration), equivalent (same function, e.g. reset/update
    biases summed or a lossless dtype change), explained (B is A after the mistakes the findings
    name: gates swapped, a kernel transposed, biases merged or missing, reset placement or an
    activation changed, precision lost) or different (nothing searched explains it).

    \b
    Exit codes: 0 every pair identical or equivalent and no cell unpaired (unless --pair chose
    the pairs); 1 otherwise; 2 unreadable input or bad usage.

    \b
    Examples:
      gruinspect diff model.h5 port/model.safetensors
      gruinspect diff model.ckpt model.keras --pair rnn/gru_cell=gru --json
    """
    from ..diff import diff, parse_pairs

    report = diff(a_path, b_path, pairs=parse_pairs(pair_texts) or None, atol=atol, seed=seed)
    if as_json:
        render.emit_json(report.to_json())
    else:
        _show(report, show_blocks)
    if report.exit_code:
        sys.exit(report.exit_code)


def _num(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def _show(report, show_blocks: bool) -> None:
    warn_each(report.problems)
    if report.pairs:
        render.table(["A cell", "B cell", "verdict", "output max abs", "findings"],
                     [[p.a.name, p.b.name, p.verdict, _num(p.output_max_abs),
                       ", ".join(dict.fromkeys(f.code for f in p.findings)) or "-"] for p in report.pairs],
                     right={3})
    for p in report.pairs:
        if p.verdict == "identical":
            continue
        render.text()
        render.text(f"{p.a.name} -> {p.b.name}: {p.verdict}")
        for f in p.findings:
            render.text(f"  {f.code}: {f.detail}")
        for note in p.notes:
            render.text(f"  note: {note}")
        if show_blocks or p.verdict == "different":
            render.table(["block", "shape A", "shape B", "max abs", "rel L2"],
                         [[f"{r['gate']} {r['role']}", _shape(r["shape_a"]), _shape(r["shape_b"]),
                           _num(r["max_abs"]), _num(r["rel_l2"])] for r in p.blocks], right={3, 4})
    for side, names in (("A", report.unpaired_a), ("B", report.unpaired_b)):
        if names:
            hint = "not compared" if report.paired_by_hand else "--pair CELL_A=CELL_B pairs them by hand"
            render.text(f"Unpaired in {side}: {', '.join(names)} ({hint})")
    counts = {}
    for p in report.pairs:
        counts[p.verdict] = counts.get(p.verdict, 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in counts.items()) or "no GRU cell paired"
    n = len(report.pairs)
    render.text(f"{n} pair{'' if n == 1 else 's'}: {summary}; A {report.a['path']} [{report.a['format']}], "
                f"B {report.b['path']} [{report.b['format']}]")


def _shape(shape) -> str:
    return "-" if shape is None else "x".join(map(str, shape))
