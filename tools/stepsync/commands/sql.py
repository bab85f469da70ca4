"""`stepsync sql [--no-backfill] [--row-security VIEWER]`: the install as a psql script (stepsync.install.sql),
made offline."""

from __future__ import annotations

import click

from stepsync import install as installer


def run(no_backfill: bool, *, viewer: str | None = None) -> None:
    """Print the install script without connecting anywhere."""
    click.echo(installer.sql(run_backfill=not no_backfill, viewer=viewer), nl=False)
