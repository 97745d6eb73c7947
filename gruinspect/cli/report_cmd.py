from __future__ import annotations

import click

from .. import render
from ..report import write_report
from .options import cell_option, common_options, path_argument


@click.command("report")
@path_argument
@click.option("--out", "-o", required=True, metavar="FILE", type=click.Path(path_type=str),
              help="HTML file to write (refused if it exists, unless --force).")
@cell_option
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@common_options
def report_command(path, out, patterns, force, as_json):
    """Write one self-contained HTML page drawing every GRU cell of PATH.

    Per cell: a summary line, the health figures, a heatmap of every block with its gate and role,
    value histograms per gate and the stored slice of each block. The page has no script and
    fetches nothing; large blocks are drawn as tile means, with their true shape stated.

    \b
    Example:
      gruinspect report model.keras --out report.html
    """
    with render.Progress("Drawing") as progress:
        result = write_report(path, out, patterns=patterns, force=force, progress=progress)
    if as_json:
        render.emit_json(result.to_json())
        return
    n = len(result.cells)
    render.text(f"Report of {n} GRU cell{'s' if n != 1 else ''} written to {out} ({result.bytes:,} bytes).")
