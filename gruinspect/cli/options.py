"""Options shared by every command."""
from __future__ import annotations

import click

from . import set_traceback


def path_argument(f):
    return click.argument("path", metavar="PATH", type=click.Path(path_type=str))(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def traceback_option(f):
    return click.option("--traceback", is_flag=True, expose_value=False, is_eager=True, callback=set_traceback,
                        help="Show the full Python traceback on errors.")(f)


def cell_option(f):
    return click.option("--cell", "patterns", multiple=True, metavar="GLOB",
                        help="Only cells whose name matches GLOB (repeatable), e.g. 'rnn/*'.")(f)


def common_options(f):
    """--json and --traceback, on every command."""
    return json_option(traceback_option(f))
