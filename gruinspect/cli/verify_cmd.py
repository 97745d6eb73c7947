from __future__ import annotations

import click

from .. import render
from ..output import write_text
from ..verify import ORACLE_MODES, verify
from . import _one_line, warn_each
from .multi import jsonl_option, parallel_results, paths_argument, run_each
from .options import cell_option, common_options


@click.command("verify")
@paths_argument
@click.option("--exported", metavar="DIR", type=click.Path(path_type=str),
              help="Also check a `gruinspect split` output folder against PATH: files, sha256, values, maths.")
@cell_option
@click.option("--oracle", type=click.Choice(ORACLE_MODES), default="auto", show_default=True,
              help="auto: run the framework's own cell when its framework is installed, else skip that check; "
                   "framework: require it (exit 2 when missing); numpy: bit-exact and numpy checks only.")
@click.option("--atol", type=float, metavar="X", help="Absolute tolerance for every numeric check "
                                                      "(default by dtype: float64 1e-10, float32 1e-5, "
                                                      "float16 1e-2, bfloat16 5e-2).")
@click.option("--rtol", type=float, metavar="X", help="Relative tolerance for every numeric check (default by dtype).")
@click.option("--steps", type=click.IntRange(1, 10_000), default=5, show_default=True,
              help="Time steps of the random test sequence.")
@click.option("--batch", type=click.IntRange(1, 10_000), default=3, show_default=True,
              help="Sequences run side by side.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs and states.")
@click.option("--allow-empty", is_flag=True, help="Exit 0 when PATH holds no GRU cell.")
@click.option("--junit", metavar="FILE", type=click.Path(path_type=str, dir_okay=False),
              help="Also write a JUnit XML report (one testcase per cell and check) for CI systems.")
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=1, show_default=True, metavar="N",
              help="Verify up to N of several PATHs at the same time, each in its own worker process.")
@jsonl_option
@common_options
@click.pass_context
def verify_command(ctx, paths, exported, patterns, oracle, atol, rtol, steps, batch, seed, allow_empty, junit,
                   jobs, as_json, jsonl):
    """Prove the split of every GRU cell in PATH, with numbers and an exit code.

    For each cell: re-fusing the blocks rebuilds the stored tensors bit for bit; an explicit
    per-gate GRU built from the blocks (float64) matches the layout's equations on the fused
    tensors, and the framework's own cell (TF1 GRUCell, GRUBlockCell, tf-keras or Keras 3 GRUCell)
    fed the original tensors, over a seeded random sequence.

    \b
    Exit codes: 0 all verified; 1 a check failed, or no GRU cell was found (unless --allow-empty);
    2 unreadable input, bad usage, or --oracle framework without TensorFlow.

    Several PATHs are verified in one run (--jobs N: N at a time): with --json one document
    {"files": [{"path", "exit_code", "result" or "error"}], "exit_code"} (one PATH prints its
    result alone, as always), with --jsonl one such entry per line; the exit code is the worst of
    them. --exported and --junit take a single PATH.

    \b
    Examples:
      gruinspect verify model.ckpt
      gruinspect verify model.ckpt --exported blocks --junit verify.xml
      gruinspect verify runs/*/model.ckpt --jobs 2 --jsonl
    """
    options = dict(patterns=patterns, oracle=oracle, steps=steps, batch=batch, seed=seed, atol=atol, rtol=rtol,
                   allow_empty=allow_empty)
    if len(paths) == 1 and not jsonl:
        ctx.exit(_verify_one(paths[0], as_json, exported=exported, junit=junit, **options)[1])
    for flag, value in (("--exported", exported), ("--junit", junit)):
        if value and len(paths) > 1:
            raise click.UsageError(f"{flag} takes a single PATH, not {len(paths)}.")

    def one(path, structured):
        return _verify_one(path, structured, exported=exported, junit=junit, emit=False, **options)

    results = parallel_results(paths, one, jobs=jobs, structured=as_json or jsonl) if jobs > 1 and len(paths) > 1 \
        else None
    ctx.exit(run_each(ctx, paths, one, as_json=as_json, jsonl=jsonl, results=results))


def _verify_one(path, as_json, *, exported, junit, emit=True, **options):
    """Verify one file; returns (its JSON result when ``as_json``, its exit code)."""
    with render.Progress("Verifying", enabled=None if emit else False) as progress:
        report = verify(path, exported=exported, progress=progress, **options)
    for message in report.notes:
        render.note(_one_line(message))
    if junit:
        write_text(junit, report.to_junit())
    data = None
    if as_json:
        data = report.to_json()
        if emit:
            render.emit_json(data)
    else:
        _print_report(report)
    return data, int(report.exit_code)


def _tolerance(check) -> str:
    if check.atol is None:
        return "exact" if check.name in ("roundtrip", "export-blocks") else "-"
    return f"{check.atol:g} / {check.rtol:g}"


def _print_report(report) -> None:
    warn_each(report.problems)
    for i, cr in enumerate(report.cells):
        if i:
            render.text()
        c = cr.cell
        acts = f"{cr.recurrent_activation}/{cr.activation}" + (" assumed" if cr.activations_assumed else "")
        render.table(
            ["check", "result", "max abs", "max rel", "atol / rtol", "oracle / detail"],
            [[k.name, k.status.upper() if k.status == "failed" else k.status, k.max_abs, k.max_rel, _tolerance(k),
              k.oracle if k.oracle and k.status == "passed" else k.message] for k in cr.checks],
            title=f"{c.name} ({c.layout}, {c.input_size}->{c.units}, {c.dtype}, "
                  f"reset_after={'yes' if c.reset_after else 'no'}, {acts})",
            right={2, 3},
        )
        for note in cr.notes:
            render.text(_one_line(f"note: {note}"))
    file_checks = [k for k in report.checks if k.name != "cells" or k.status != "passed"]
    if file_checks:
        if report.cells:
            render.text()
        render.table(["check", "result", "detail"],
                     [[k.name, k.status.upper() if k.status == "failed" else k.status, k.message]
                      for k in file_checks], title=report.exported or report.path)
    failures = [(cell, k) for cell, k in report.all_checks if k.status == "failed"]
    if failures:
        render.text()
        for cell, k in failures:
            render.text(_one_line(f"FAILED {cell + ': ' if cell else ''}{k.name}: {k.message}"))
            for line in k.failures[1:]:
                render.text(_one_line(f"  - {line}"))
    counts = report.counts()
    n = len(report.cells)
    cells = f"{n} cell{'s' if n != 1 else ''}"
    summary = (f"{counts['passed']} checks passed, {counts['failed']} failed, {counts['skipped']} skipped "
               f"({cells} in {report.path}{', export ' + report.exported if report.exported else ''})")
    render.text()
    render.text(("verified: " if report.ok else "FAILED: ") + summary)
