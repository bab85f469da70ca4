"""stepsync on a Citus coordinator: the distributed variant (docs/contract.md §11).

Revisions stepsync_0002-0005 install stepsync with keys, foreign keys and
joins that Citus refuses, so on a coordinator `stepsync install` does not run
them. It installs the newest revision's state directly, in one transaction as
the tables' owner:

  * every object stepsync has (db/types, views, functions, triggers) from its
    newest frozen copy, except where Citus requires a distributed variant:
    then from db/migrations/sql/<revision>/citus/ (db/citus/ is the readable
    source): the sync's statements on the flow's shard, the delete trigger
    doing the work of the refused ON DELETE SET NULL key, the joins on the
    distribution column;
  * the sync columns and keys (citus/columns.sql: the upsert key is
    (tree_key, source_node_id), no foreign key that Citus refuses);

then the search vectors of rows already there, the backfill (as on one node,
resumable), and the revision in stepsync's version table. The preflight is the
one-node preflight plus the layout of §11.1 (citus/layout.sql); a refusal
lists the statements that would lay the tables out (`stepsync distribute`).

Citus propagates what the coordinator creates (schema, types, functions,
triggers, DDL on distributed tables) to the workers; DDL runs on the
coordinator only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

from stepsync import database, history
from stepsync.database import one_row
from stepsync.paths import CITUS_DIR, FROZEN_SQL_DIR, object_file, object_files
from stepsync.sqltext import split_statements

VARIANT_DIR = "citus"


def citus_only_functions() -> list[str]:
    """Functions only the distributed variant has: files of db/citus/functions/ with no one-node file of the
    same name (their frozen copies are what the install reads)."""
    return sorted(p.name for p in (CITUS_DIR / "functions").glob("*.sql") if object_file(p.name) is None)


# One connection a worker for the whole transaction: Citus refuses DDL on a schema after a parallel
# operation over the shards in the same transaction (XX000), and the install and uninstall mix both.
SEQUENTIAL = "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';"


def is_citus(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database has the citus extension (a coordinator, or a worker)."""
    return bool(one_row(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')"))[0])


def _revisions() -> list[Path]:
    return sorted(p for p in FROZEN_SQL_DIR.glob("stepsync_*") if p.is_dir())


def frozen_file(name: str) -> Path:
    """The newest frozen copy of NAME for a coordinator: its distributed variant if one was frozen,
    else the copy one node installs."""
    for directory in reversed(_revisions()):
        if (directory / VARIANT_DIR / name).is_file():
            return directory / VARIANT_DIR / name
    for directory in reversed(_revisions()):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"no frozen copy of {name}")


def variant_names() -> list[str]:
    """The files that have a distributed variant (for status, doctor and the docs)."""
    return sorted({p.name for d in _revisions() for p in (d / VARIANT_DIR).glob("*.sql")})


def _read(name: str) -> str:
    return frozen_file(name).read_text(encoding="utf-8")


def _objects(kind: str) -> list[str]:
    """File names of the objects of KIND (the folder: types, views, functions, triggers) stepsync has."""
    return [p.name for p in object_files() if p.parent.name == kind]


def install_statements() -> list[str]:
    """The statements of the transaction that installs the distributed variant (see the module's
    docstring), as the owner, one by one: Citus passes a command it propagates to the workers as the
    text the client sent, and a text of several statements fails there (42601). Order: the schema,
    the columns and keys, the row types, stepsync's own tables, the view (the
    functions return its row type), the functions, the grants, the search's anchors (their keys are a
    function's) and its kept statistics, the triggers, the schema's comment.
    """
    from stepsync.frozen import comments_of, transaction_sql, unless_exists

    head = history.head_revision()
    parts = [_read("schema.sql"), _read("columns.sql"),
             *(_read(n) for n in _objects("types")),
             _read("row_security_setting.sql"), _read("backfill_progress.sql"), _read("search_sample.sql"),
             _read("search_anchors.sql"), _read("search_row.sql"), _read("search_request.sql"),
             _read("search_walk.sql"), _read("search_gathered.sql"),
             *(unless_exists(f"public.{n.removesuffix('.sql')}", _read(n)) + comments_of(_read(n))
               for n in _objects("views")),   # a view is created once (CREATE VIEW: see its file), commented anew
             *(_read(n) for n in (*_objects("functions"), *citus_only_functions())),
             _read("grants.sql"),
             _read("search_anchors_fill.sql"), _read("search_statistics_keep.sql"),
             *(_read(n) for n in _objects("triggers")),
             _read("delegate.sql"),
             f"INSERT INTO stepsync.backfill_progress (revision) VALUES ('{head}') ON CONFLICT (singleton) DO NOTHING;",
             history.schema_comment_sql(head)]
    return split_statements(transaction_sql(SEQUENTIAL, *parts))


def preflight_query(one_node_preflight: str) -> str:
    """The preflight on a coordinator, one query of (object, message) rows: the one-node preflight
    ONE_NODE_PREFLIGHT (columns, types, owners, names, data), less what the layout makes right (the
    upsert key step_library_source_key is UNIQUE (tree_key, source_node_id) here; `stepsync distribute`
    may have made it), and the layout (citus/layout.sql)."""
    one_node = one_node_preflight.strip().rstrip(";")
    layout = _read("layout.sql").strip().rstrip(";")
    return f"""SELECT p.object, p.message FROM ({one_node}) AS p
 WHERE NOT (p.object = 'constraint step_library_source_key on public.step_library'
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS c
                         WHERE c.conrelid = pg_catalog.to_regclass('public.step_library')
                           AND c.conname = 'step_library_source_key' AND c.contype = 'u'
                           AND pg_catalog.pg_get_constraintdef(c.oid) = 'UNIQUE (tree_key, source_node_id)'))
UNION ALL
SELECT l.object, l.message FROM ({layout}) AS l"""


def preflight(conn: psycopg.Connection[Any], one_node_preflight: str) -> list[tuple[str, str]]:
    """Every problem that stops the distributed variant from installing (object, message); [] when none
    (`preflight_query`)."""
    rows = [(str(o), str(m)) for o, m in conn.execute(preflight_query(one_node_preflight)).fetchall()]
    conn.rollback()
    return rows


def describe(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """For `stepsync status`: on a Citus database, how the four tables are laid out, the workers
    (host:port, as every node may share a host name), and whether the distributed variant is installed;
    None elsewhere."""
    if not is_citus(conn):
        return None
    tables = dict(conn.execute(
        "SELECT c.relname::text, CASE WHEN t.table_name IS NULL THEN 'local'"
        " WHEN t.citus_table_type = 'distributed' THEN 'distributed by ' || t.distribution_column"
        " ELSE t.citus_table_type END"
        "  FROM pg_catalog.pg_class AS c LEFT JOIN public.citus_tables AS t ON t.table_name = c.oid"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
        "   AND c.relname IN ('accounts', 'users', 'trees', 'step_library') ORDER BY 1").fetchall())
    workers = [str(w) for (w,) in conn.execute(
        "SELECT nodename || ':' || nodeport FROM pg_catalog.pg_dist_node WHERE groupid <> 0 AND isactive"
        " AND noderole = 'primary' ORDER BY nodename, nodeport").fetchall()]
    coordinator = bool(one_row(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node WHERE groupid = 0)"
        " OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node)"))[0])
    return {"coordinator": coordinator, "distributed_variant": installed(conn), "tables": tables,
            "workers": workers}


def render(described: dict[str, Any] | None) -> list[str]:
    """`describe` as the lines of `stepsync status`."""
    if described is None:
        return []
    variant = "the distributed variant" if described["distributed_variant"] else "not the distributed variant"
    tables = ", ".join(f"{t} {how}" for t, how in described["tables"].items())
    return [f"citus: {variant}; {tables}; {len(described['workers'])} workers ({', '.join(described['workers'])})"]


def installed(conn: psycopg.Connection[Any]) -> bool:
    """Whether stepsync's distributed variant is installed (any revision): its own function is there."""
    return bool(one_row(conn.execute(
        "SELECT pg_catalog.to_regprocedure('stepsync._refuse_on_coordinator()') IS NOT NULL"))[0])


def install(url: str) -> None:
    """Install the distributed variant into the coordinator at URL (laid out and checked), or bring an
    older one to the newest revision: every statement may run again (CREATE OR REPLACE, IF NOT EXISTS,
    a view created once); then record the newest revision in stepsync's version table. The backfill is
    marked pending (see `backfill`)."""
    from alembic import command

    with database.connect(url) as conn:
        for statement in install_statements():
            conn.execute(statement)
        conn.commit()
    command.stamp(database.alembic_config(url), history.head_revision())


def script(one_node_preflight: str, *, refused: str, hint: str, viewer: str | None, needs_work: str) -> str:
    """The install on a coordinator as psql script text (for `stepsync sql`): the preflight (refusing
    with every problem, 55000, before anything is written), the install's statements in one transaction,
    the revision recorded, then the backfill one delegated `SELECT stepsync_citus.sync_tree(...)` a flow
    (psql's \\gexec; a flow that fails the publish checks is reported and skipped, as the backfill
    does) over the flows NEEDS_WORK (a condition on trees AS t) selects, and the record of the backfill
    cleared."""
    from stepsync.frozen import refuse_if_any, session_as_owner_sql

    head = history.head_revision()
    parts = ["-- On Citus: the distributed variant (docs/contract.md §11).\n"]
    if viewer is not None:
        parts.append("DO $stepsync$ BEGIN RAISE EXCEPTION 'stepsync: row-level security (--row-security) is not"
                     " available on Citus in this version (docs/contract.md §11)' USING ERRCODE ="
                     " 'feature_not_supported'; END; $stepsync$;\n")
    parts.append(refuse_if_any(preflight_query(one_node_preflight), refused, hint))
    parts.append("BEGIN;\n" + ";\n".join(install_statements()) + ";\n")
    parts.append(f"CREATE TABLE IF NOT EXISTS public.{history.VERSION_TABLE} (version_num varchar(32) NOT NULL,"
                 f" CONSTRAINT {history.VERSION_TABLE}_pkc PRIMARY KEY (version_num));\n"
                 f"DELETE FROM public.{history.VERSION_TABLE};\n"
                 f"INSERT INTO public.{history.VERSION_TABLE} (version_num) VALUES ('{head}');\n"
                 f"COMMENT ON TABLE public.{history.VERSION_TABLE} IS {database.literal(history.ADOPTED_COMMENT)};\n"
                 "COMMIT;\n")
    become, restore = session_as_owner_sql()   # stepsync_citus.sync_tree is the owner's alone
    parts.append("-- The backfill: one statement a flow, which Citus runs on the flow's worker.\n" + become +
                 "\\set ON_ERROR_STOP off\n"
                 "SELECT pg_catalog.format('SELECT stepsync_citus.sync_tree(%L)', t.id) FROM public.trees AS t\n"
                 f" WHERE {needs_work} ORDER BY t.id\n\\gexec\n"
                 "\\set ON_ERROR_STOP on\n"
                 "DELETE FROM stepsync.backfill_progress;\n" + restore)
    return "".join(parts)


def refresh_statistics(url: str) -> int:
    """stepsync.refresh_search_statistics() as the owner: the sample search_steps estimates from."""
    with database.connect(url, autocommit=True) as conn:
        owner = one_row(conn.execute("SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class"
                                     " WHERE oid = 'public.step_library'::regclass"))[0]
        if one_row(conn.execute("SELECT current_user <> %s", (owner,)))[0]:
            conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(owner)))
        return int(one_row(conn.execute("SELECT stepsync.refresh_search_statistics()"))[0])


def uninstall_statements(drop_columns: bool) -> list[str]:
    """Remove stepsync from a coordinator; with DROP_COLUMNS also what it added to step_library."""
    from stepsync.frozen import transaction_sql

    parts = [_read("delegate_drop.sql"), _read("uninstall.sql")]
    if drop_columns:
        parts.append(_read("drop_columns.sql"))
    return split_statements(transaction_sql(SEQUENTIAL, *parts))


def uninstall(url: str, *, drop_columns: bool) -> None:
    """Remove the distributed variant from the coordinator at URL (the tables and rows stay; with
    DROP_COLUMNS, what stepsync added to step_library goes too). The version table is the caller's."""
    with database.connect(url) as conn:
        for statement in uninstall_statements(drop_columns=drop_columns):
            conn.execute(statement)
        conn.commit()
