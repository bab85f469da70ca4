"""stepsync's migration history: its version table, its revision ids, and the old ids it replaced.

stepsync records its revision in public.stepsync_version (alembic's layout),
never in the application's alembic_version; its revision ids all start with
`stepsync_`, so they cannot collide with an application's, and its branch is
labelled `stepsync`. An application that carries stepsync in its own alembic
(docs/operating.md) records stepsync's revisions in its own version table
instead; that works too.

Before this layout, stepsync migrated with ids 0001 ... 0005 in
public.alembic_version. `adopt_legacy_version` moves such a database to the
new table, once, so that it keeps upgrading.
"""

from __future__ import annotations

from typing import Any

import psycopg

from stepsync.database import StepsyncError, literal, one_row

VERSION_TABLE = "stepsync_version"
BRANCH = "stepsync"
TABLES_REVISION = "stepsync_0001"

# The version table's comment says how stepsync came to this database.
STANDALONE_COMMENT = ("stepsync's migration history (alembic). standalone: stepsync created accounts, users,"
                      " trees and step_library.")
ADOPTED_COMMENT = "stepsync's migration history (alembic). adopted: the application owns its tables."

# Schema stepsync's comment names the revision installed, so that it is known however stepsync was
# installed (its own version table, or an application's alembic whose version table may name only an
# application revision that depends on stepsync's).
SCHEMA_COMMENT = ("stepsync: the functions, triggers and views that keep public.step_library in sync with"
                  " published flows. Revision {revision}.")


def schema_comment_sql(revision: str) -> str:
    """The statement each install revision ends with: the schema's comment naming REVISION."""
    return f"COMMENT ON SCHEMA stepsync IS {literal(SCHEMA_COMMENT.format(revision=revision))};"


# Old revision -> the new revision whose state it has. 0001 created the tables (now stepsync_0001);
# 0002-0005 installed the sync: the new install revision re-applies itself over them (it adopts
# whatever of the sync is there), so they map to stepsync_0001 too.
LEGACY_IDS = {"0001": TABLES_REVISION, "0002": TABLES_REVISION, "0003": TABLES_REVISION,
              "0004": TABLES_REVISION, "0005": TABLES_REVISION}

# Legacy 0001 left this comment on public.trees: proof that it, not the application, created the tables.
_LEGACY_TREES_COMMENT = "A flow: a procedural or maintenance procedure, or a troubleshooting tree."

_LEGACY_SQL = """
SELECT v.version_num,
       pg_catalog.to_regnamespace('stepsync') IS NOT NULL,
       pg_catalog.obj_description(pg_catalog.to_regclass('public.trees'), 'pg_class')
  FROM public.alembic_version AS v
"""


def adopt_legacy_version(connection: Any) -> bool:
    """Move a database migrated with the old ids to public.stepsync_version; True if it did.

    CONNECTION is a SQLAlchemy connection. Only a database whose
    public.alembic_version holds exactly one old stepsync id, and whose tables
    stepsync itself created, is moved; public.alembic_version, which then held
    only stepsync's row, is dropped. Anything else is left alone.
    """
    try:
        return _adopt_legacy_version(connection)
    finally:
        connection.commit()  # leave no transaction open: alembic begins its own per revision


def _adopt_legacy_version(connection: Any) -> bool:
    from sqlalchemy import text

    if connection.execute(text("SELECT pg_catalog.to_regclass('public.stepsync_version') IS NOT NULL"
                               " OR pg_catalog.to_regclass('public.alembic_version') IS NULL")).scalar():
        return False
    rows = connection.execute(text(_LEGACY_SQL)).fetchall()
    if len(rows) != 1:
        return False
    old, has_schema, trees_comment = rows[0]
    if old not in LEGACY_IDS or trees_comment != _LEGACY_TREES_COMMENT or (old != "0001" and not has_schema):
        return False
    connection.execute(text(
        f"CREATE TABLE public.{VERSION_TABLE} (version_num varchar(32) NOT NULL,"
        f" CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"))
    connection.execute(text(f"INSERT INTO public.{VERSION_TABLE} VALUES (:v)"), {"v": LEGACY_IDS[old]})
    connection.execute(text(f"COMMENT ON TABLE public.{VERSION_TABLE} IS {literal(STANDALONE_COMMENT)}"))
    connection.execute(text("DROP TABLE public.alembic_version"))
    return True


def script_directory() -> Any:
    """alembic's view of the packaged revisions."""
    from alembic.script import ScriptDirectory

    from stepsync.paths import MIGRATIONS_DIR

    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str:
    """The newest revision this package carries."""
    head = script_directory().get_current_head()
    assert head is not None
    return str(head)


_INSTALLED_SQL = f"""
SELECT (SELECT pg_catalog.string_agg(v.version_num, ',')
          FROM public.{VERSION_TABLE} AS v
         WHERE pg_catalog.to_regclass('public.{VERSION_TABLE}') IS NOT NULL)
"""


def installed_revision(conn: psycopg.Connection[Any]) -> str | None:
    """The stepsync revision of the database: from its own version table, else from the application's
    alembic_version (stepsync carried as a branch of the application's alembic), else None."""
    if one_row(conn.execute(f"SELECT pg_catalog.to_regclass('public.{VERSION_TABLE}') IS NOT NULL"))[0]:
        row = conn.execute(f"SELECT version_num FROM public.{VERSION_TABLE}").fetchone()
        return None if row is None else str(row[0])
    if one_row(conn.execute("SELECT pg_catalog.to_regclass('public.alembic_version') IS NOT NULL"))[0]:
        row = conn.execute("SELECT version_num FROM public.alembic_version WHERE version_num LIKE 'stepsync\\_%'"
                           " ORDER BY version_num DESC LIMIT 1").fetchone()
        if row is not None:
            return str(row[0])
        row = conn.execute("SELECT version_num FROM public.alembic_version"
                           " WHERE version_num = ANY(%s) AND pg_catalog.to_regnamespace('stepsync') IS NOT NULL",
                           (list(LEGACY_IDS),)).fetchone()
        if row is not None:
            return str(row[0])
    return revision_from_schema(conn)


def revision_from_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The revision schema stepsync's comment names (see SCHEMA_COMMENT), or None."""
    row = conn.execute("SELECT substring(pg_catalog.obj_description(n.oid, 'pg_namespace')"
                       " FROM 'Revision (stepsync_[0-9]+)\\.$') FROM pg_catalog.pg_namespace AS n"
                       " WHERE n.nspname = 'stepsync'").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def carried_by_application(conn: psycopg.Connection[Any]) -> bool:
    """stepsync is installed here through the application's own alembic (no version table of its own)."""
    own = conn.execute(f"SELECT pg_catalog.to_regclass('public.{VERSION_TABLE}') IS NOT NULL").fetchone()
    return bool(own is not None and not own[0] and revision_from_schema(conn) is not None)


def install_mode(conn: psycopg.Connection[Any]) -> str | None:
    """'standalone' (stepsync created the tables: `stepsync migrate`), 'adopted' (installed into the
    application's tables), 'application alembic' (carried by the application's own alembic), or None
    when stepsync is not installed."""
    if installed_revision(conn) is None:
        return None
    comment = conn.execute(
        f"SELECT pg_catalog.obj_description(pg_catalog.to_regclass('public.{VERSION_TABLE}'), 'pg_class')"
    ).fetchone()
    if carried_by_application(conn):
        return "application alembic"
    return "standalone" if comment and comment[0] == STANDALONE_COMMENT else "adopted"


def revision_info(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """{"revision", "head_revision", "install_mode"}: installed revision (None when not installed)."""
    return {"revision": installed_revision(conn), "head_revision": head_revision(),
            "install_mode": install_mode(conn)}


def require_installed(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """revision_info, or a StepsyncError when stepsync is not installed in this database."""
    info = revision_info(conn)
    if info["revision"] is None:
        raise StepsyncError(f"stepsync is not installed in database {conn.info.dbname}:"
                            " run `stepsync install` (or `stepsync migrate` for a new database)")
    return info
