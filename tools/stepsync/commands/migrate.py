"""`stepsync migrate`: the standalone path (demo, tests): alembic upgrade head, which creates the four
application tables when the database has none, then installs stepsync."""

from __future__ import annotations

import click

from stepsync import database


def run(url: str) -> None:
    """Migrate the database at URL to the newest revision; a Citus database is refused first, changing
    nothing (db/install/citus_preflight.sql says why)."""
    from stepsync.install import citus_preflight_sql

    with database.connect(url) as conn:
        refused = conn.execute(citus_preflight_sql()).fetchall()
    if refused:
        raise database.StepsyncError(f"{refused[0][0]}: {refused[0][1]}")
    database.migrate(url)
    click.echo(f"migrated {database.redact(url)} to head")
