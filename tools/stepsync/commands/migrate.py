"""`stepsync migrate`: the standalone path (demo, tests): alembic upgrade head, which creates the four
application tables when the database has none, then installs stepsync."""

from __future__ import annotations

import click

from stepsync import database


def run(url: str) -> None:
    """Migrate the database at URL to the newest revision."""
    database.migrate(url)
    click.echo(f"migrated {database.redact(url)} to head")
