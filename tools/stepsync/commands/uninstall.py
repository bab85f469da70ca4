"""`stepsync uninstall [--drop-columns]`: stepsync.install.uninstall, its progress lines on stderr."""

from __future__ import annotations

import click

from stepsync import install as installer


def run(url: str, drop_columns: bool) -> None:
    """Remove stepsync from the database at URL; the application's tables and rows stay."""
    click.echo(installer.uninstall(url, drop_columns=drop_columns,
                                   say=lambda line: click.echo(f"stepsync: {line}", err=True)))
