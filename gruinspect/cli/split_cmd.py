from __future__ import annotations

import click

from .. import render
from ..splitting import FORMATS, split
from . import warn_each
from .options import cell_option, common_options, path_argument


@click.command("split")
@path_argument
@click.option("--out", "-o", required=True, metavar="DIR", type=click.Path(path_type=str),
              help="Folder to write (created; must be empty or absent unless --force).")
@cell_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="npy", show_default=True,
              help="npy: one file per block; npz: one archive per cell.")
@click.option("--names", is_flag=True, help="Also write the names used in code: W_r, U_z, b_h, b_hn...")
@click.option("--force", is_flag=True, help="Replace DIR if it exists and is not empty.")
@common_options
def split_command(path, out, patterns, fmt, names, force, as_json):
    """Write every gate block of the GRU cells in PATH to DIR, plus DIR/manifest.json.

    Each block is [input_size, units], [units, units] or [units], oriented for x @ W. The manifest
    records each block's shape, dtype, sha256 and the fused tensor slice it came from.

    \b
    Example:
      gruinspect split model.ckpt --out blocks --names
    """
    with render.Progress("Splitting") as progress:
        result = split(path, out, patterns=patterns, fmt=fmt, names=names, force=force, progress=progress)
    warn_each(result.problems)  # on stderr with --json too: the manifest has no problems field
    if as_json:
        render.emit_json(result.manifest)
        return
    cells = result.manifest["cells"]
    render.table(["cell", "layout", "blocks", "written to"],
                 [[c["name"], c["layout"], len(c["arrays"]),
                   c.get("file") or c["arrays"][0]["file"].rsplit("/", 1)[0] + "/" if c["arrays"] else "-"]
                  for c in cells], right={2})
    render.text(f"{result.files} blocks of {len(cells)} cell{'s' if len(cells) != 1 else ''} written to {out} "
                f"(manifest: {out}/manifest.json)")
