"""Placeholder: replaced by the verify command."""
from __future__ import annotations

import click


@click.command("convert")
def convert_command():
    """Not available yet."""
    raise click.ClickException("convert is not available yet")
