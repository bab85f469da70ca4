"""`stepsync migrate`: the standalone path (demo, tests): alembic upgrade head, which creates the four
application tables when the database has none, then installs stepsync.

On a Citus coordinator the tables are made as docs/contract.md §11.1 lays them out: revision
stepsync_0001 creates them (local tables, as on one node), `stepsync distribute` lays them out and
installs the distributed variant. The single-node revisions after stepsync_0001 never run there: Citus
refuses their keys.
"""

from __future__ import annotations

import click

from stepsync import database, distribute, history


def run(url: str) -> None:
    """Migrate the database at URL to the newest revision; on a Citus database, only on its coordinator."""
    with database.connect(url) as conn:
        on_citus = distribute.citus_version(conn) is not None
        if on_citus:
            distribute.refuse_unless_coordinator(conn, "migrate")
    if not on_citus:
        database.migrate(url)
        click.echo(f"migrated {database.redact(url)} to head")
        return
    from stepsync.commands.distribute import lay_out

    database.migrate(url, history.TABLES_REVISION)
    click.echo(f"migrated {database.redact(url)} on Citus: {lay_out(url)}")
