"""Placeholder: replaced by the verify command."""
from __future__ import annotations

import click


@click.command("verify")
def verify_command():
    """Not available yet."""
    raise click.ClickException("verify is not available yet")
