"""Run the frozen SQL files a revision carries (db/migrations/sql/<revision>/).

db/functions/ is the readable, current source of every function, trigger and
view. A revision never reads it: it installs the copy frozen beside it when it
was written, so old revisions keep their meaning when db/functions changes.
The drift gate (tests/test_drift.py) fails when `upgrade head` leaves anything
that differs from db/functions/.
"""

from __future__ import annotations

from stepsync.paths import FROZEN_SQL_DIR


def read(revision: str, name: str) -> str:
    """The text of db/migrations/sql/<revision>/<name>."""
    return (FROZEN_SQL_DIR / revision / name).read_text(encoding="utf-8")


def execute(op, sql: str) -> None:
    """Run SQL (several statements allowed) on the migration's connection.

    Goes through the driver connection: SQLAlchemy's text() would take JSON
    literals such as '{"a":1}' for bind parameters (PITFALLS.md).
    """
    op.get_bind().connection.driver_connection.execute(sql)


def install(op, revision: str, *names: str) -> None:
    """Run the frozen files NAMES of REVISION, in the order given.

    They run with search_path = pg_catalog, pg_temp, so that what they create
    (trigger WHEN clauses, view and default expressions) binds to the system's
    operators and functions, never to look-alikes in another schema; the
    session's search_path is restored afterwards.
    """
    execute(op, "SELECT pg_catalog.set_config('stepsync.saved_search_path', pg_catalog.current_setting('search_path'), true);"
                " SET LOCAL search_path = pg_catalog, pg_temp;")
    for name in names:
        execute(op, read(revision, name))
    execute(op, "SELECT pg_catalog.set_config('search_path',"
                " pg_catalog.current_setting('stepsync.saved_search_path'), true)")
