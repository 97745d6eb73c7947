from __future__ import annotations

import click

from .. import render
from ..report import write_plots
from .options import cell_option, common_options, path_argument


@click.command("plot")
@path_argument
@click.option("--out", "-o", required=True, metavar="DIR", type=click.Path(path_type=str),
              help="Folder to write (created; must be empty or absent unless --force).")
@cell_option
@click.option("--dpi", type=click.IntRange(50, 600), default=120, show_default=True, help="Resolution of the PNGs.")
@click.option("--force", is_flag=True, help="Replace DIR if it exists and is not empty.")
@common_options
def plot_command(path, out, patterns, dpi, force, as_json):
    """Write the report's figures of every GRU cell of PATH as PNG files under DIR.

    Per cell, in a folder named after it: blocks.png (a heatmap of every block), histograms.png
    (values per gate) and health.png; DIR/plots.json lists them with the health figures.
    Needs matplotlib: pip install 'gruinspect[plot]'.

    \b
    Example:
      gruinspect plot model.keras --out figures --cell 'encoder*'
    """
    with render.Progress("Drawing") as progress:
        manifest = write_plots(path, out, patterns=patterns, force=force, progress=progress, dpi=dpi)
    if as_json:
        render.emit_json(manifest)
        return
    cells = manifest["cells"]
    render.table(["cell", "files"], [[c["name"], ", ".join(c["files"])] for c in cells])
    render.text(f"{sum(len(c['files']) for c in cells)} PNG files of {len(cells)} cell{'s' if len(cells) != 1 else ''} "
                f"written to {out} (index: {out}/plots.json)")
