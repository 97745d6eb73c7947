from __future__ import annotations

import click

from .list_text import list_one
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
    run_paths(ctx, paths, lambda path, structured, emit: list_one(path, all_tensors, long, structured, emit),
              as_json=as_json, jsonl=jsonl)
