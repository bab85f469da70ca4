"""Adopting an existing application database (docs/contract.md §9), through the real command line.

Every case builds the application's database as adopting teams have it (tests/app_schema.py: extra
columns, varchar types, its own constraint names, owned by app_owner, its own alembic_version, its own
trigger on trees; optionally the seed design's migration 030 and rows its own code synced) and drives
`python -m stepsync.cli` in a subprocess, from a temporary folder rather than the checkout. Each run
asserts its exit status, its exact output lines, and that no traceback is ever printed.

 1. each preflight refusal names the problem, one line each, and changes nothing (catalog and every
    row, row versions included); `stepsync sql`'s script refuses the same way;
 2. install as a superuser, as the owner and as a deploy role: stepsync's objects belong to the
    tables' owner, a client role publishes, the application's objects and alembic_version are as
    they were;
 3. install again at head: nothing written, not even a row version;
 4. uninstall / install round trips keep the entries; uninstall --drop-columns restores the catalog;
 5. the seed design's 030 columns and application-synced rows are adopted, stale ones retired;
 6. `stepsync sql` through psql gives what `stepsync install` gives;
 7. install --no-backfill, then resync --all, gives the same library;
 8. the tables change owner after the install: what publishing does, and `stepsync install` again;
 9. a database the old stepsync migrated (ids 0001..0005 in public.alembic_version) moves to
    public.stepsync_version and ends equal to a fresh one.

Roles are cluster-wide: app_schema.py creates them once and keeps them; the few extra roles here are
created the same way. Other roles log in without a password (the throwaway cluster trusts local
connections).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.types.json import Jsonb

from app_schema import APP_OWNER, build_app_database
from catalog import schema_snapshot
from conftest import Db
from repo import REPO_ROOT
from stepsync import history
from stepsync import install as installer
from stepsync.pgbin import PgBinError, find_bin_dir

HEAD = history.head_revision()
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nowhere"

# --- the application's data ------------------------------------------------------------------------------------

ACME = "a0000000-0000-4000-8000-000000000001"
AUTHOR = "b0000000-0000-4000-8000-000000000001"
PROC = "c0000000-0000-4000-8000-000000000001"      # procedural, published
TROUBLE = "c0000000-0000-4000-8000-000000000002"   # troubleshooting, published, public
DRAFT = "c0000000-0000-4000-8000-000000000003"     # maintenance, draft
OFF = "c0000000-0000-4000-8000-000000000004"       # procedural, published but deactivated
BAD = "c0000000-0000-4000-8000-000000000005"       # published, fails the publish checks (some tests only)
NEW = "c0000000-0000-4000-8000-000000000006"       # published by the client after the install
GONE = "c0000000-0000-4000-8000-000000000007"      # 030: deleted by the application after it synced it
HAND_MADE = "d0000000-0000-4000-8000-000000000001"

PROC_STRUCTURE = {"steps": [
    {"id": "hdr", "type": "section_header", "title": "Prepare"},
    {"id": "p1", "type": "procedure_step", "title": "Stop the service", "description": "Stop it first."},
    {"id": "p2", "type": "procedure_step", "title": "Back up the data", "expected_outcome": "A dump file.",
     "commands": ["pg_dump app", {"code": "ls -l", "language": "bash", "label": "Check"}],
     "library_visibility": "public"},
    {"id": "end", "type": "procedure_end"},
]}
TROUBLE_STRUCTURE = {"start": {"id": "q1", "type": "question", "title": "Does it boot?", "children": [
    {"id": "a1", "type": "action", "title": "Reseat the cable", "commands": "check-cable"},
    {"id": "q2", "type": "question", "title": "Lights on?", "options": [
        {"label": "no", "next": {"id": "s1", "type": "solution", "title": "Replace the PSU"}}]},
]}}
NEW_STRUCTURE = {"steps": [{"id": "n1", "type": "procedure_step", "title": "Rotate the keys"},
                           {"id": "n2", "type": "procedure_step", "title": "Tell the team"}]}

# What the sync makes of PROC's p1 (docs/contract.md §3): an application that synced it itself got it right.
P1_CONTENT = {"instructions": "Stop it first.", "help_text": None, "commands": [], "group_label": "Prepare"}

SEED_SQL = """
INSERT INTO public.accounts (id, name) VALUES (%(acme)s, 'Acme');
INSERT INTO public.users (id, email, account_id) VALUES (%(author)s, 'author@acme.test', %(acme)s);
INSERT INTO public.trees (id, name, tree_type, tree_structure, status, is_public, is_active, account_id,
                          author_id)
VALUES (%(proc)s, 'Restart the service', 'procedural', %(proc_structure)s, 'published', false, true,
        %(acme)s, %(author)s),
       (%(trouble)s, 'Does it boot?', 'troubleshooting', %(trouble_structure)s, 'published', true, true,
        %(acme)s, %(author)s),
       (%(draft)s, 'Monthly check', 'maintenance',
        '{"steps": [{"id": "m1", "type": "procedure_step", "title": "Oil the hinges"}]}', 'draft', false, true,
        %(acme)s, %(author)s),
       (%(off)s, 'Old procedure', 'procedural',
        '{"steps": [{"id": "x1", "type": "procedure_step", "title": "Old step"}]}', 'published', false, false,
        %(acme)s, %(author)s);
INSERT INTO public.step_library (id, title, step_type, content, visibility, created_by, account_id, usage_count)
VALUES (%(hand_made)s, 'Clean the filter', 'action',
        '{"instructions": "Use a brush.", "help_text": null, "commands": [], "group_label": null}',
        'team', %(author)s, %(acme)s, 3);
"""


def run_sql(conn: psycopg.Connection, sql: str, params: dict) -> None:
    """Several statements with parameters (bound client-side, so sent as one simple query)."""
    with psycopg.ClientCursor(conn) as cursor:
        cursor.execute(sql, params)


def seed(conn: psycopg.Connection) -> None:
    """The application's rows before stepsync: an account, an author, four flows, a hand-made step."""
    run_sql(conn, SEED_SQL, {"acme": ACME, "author": AUTHOR, "proc": PROC, "trouble": TROUBLE, "draft": DRAFT,
                            "off": OFF, "hand_made": HAND_MADE, "proc_structure": Jsonb(PROC_STRUCTURE),
                            "trouble_structure": Jsonb(TROUBLE_STRUCTURE)})


def add_bad_flow(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO public.trees (id, name, tree_type, tree_structure, status, account_id, author_id)"
                 " VALUES (%s, 'Broken flow', 'procedural', %s, 'published', %s, %s)",
                 (BAD, Jsonb({"steps": [{"id": "b1", "type": "procedure_step"}]}), ACME, AUTHOR))


# The library after the backfill of the seed: (flow, node, title, step_type, content, visibility, is_active).
SEEDED_LIBRARY = [
    (PROC, "p1", "Stop the service", "action", P1_CONTENT, "team", True),
    (PROC, "p2", "Back up the data", "action",
     {"instructions": "Back up the data", "help_text": "A dump file.", "group_label": "Prepare",
      "commands": [{"label": "", "command": "pg_dump app", "command_type": None},
                   {"label": "Check", "command": "ls -l", "command_type": "bash"}]}, "public", True),
    (TROUBLE, "a1", "Reseat the cable", "action",
     {"instructions": "Reseat the cable", "help_text": None, "group_label": None,
      "commands": [{"label": "", "command": "check-cable", "command_type": None}]}, "public", True),
    (TROUBLE, "s1", "Replace the PSU", "solution",
     {"instructions": "Replace the PSU", "help_text": None, "commands": [], "group_label": None}, "public", True),
]


def by_source(row: tuple) -> tuple:
    """Sort key: by flow (none last), then node, whatever the server's collation."""
    return (row[0] is None, row[0] or "", row[1] or "", str(row[2:]))


def synced(conn: psycopg.Connection) -> list[tuple]:
    """The synced entries, as SEEDED_LIBRARY lists them, by flow then node."""
    return sorted((tuple(r) for r in conn.execute(
        "SELECT source_tree_id::text, source_node_id, title, step_type, content, visibility, is_active"
        " FROM public.step_library WHERE is_flow_synced").fetchall()), key=by_source)


def library(conn: psycopg.Connection) -> list[tuple]:
    """Every row of step_library but its id and timestamps (for comparing two databases)."""
    return sorted((tuple(r) for r in conn.execute(
        "SELECT source_tree_id::text, source_node_id, title, step_type, content, visibility, created_by::text,"
        "       account_id::text, usage_count, rating, rating_count, is_active, is_flow_synced,"
        "       forked_from_id IS NOT NULL, category"
        "  FROM public.step_library").fetchall()), key=by_source)


def entries(conn: psycopg.Connection) -> dict[tuple, tuple]:
    """(flow, node) -> (id, usage_count, rating, rating_count, is_active, xmin) of every synced row."""
    return {(r[0], r[1]): tuple(r[2:]) for r in conn.execute(
        "SELECT source_tree_id::text, source_node_id, id::text, usage_count, rating, rating_count, is_active,"
        "       xmin::text FROM public.step_library WHERE is_flow_synced").fetchall()}


def library_columns(conn: psycopg.Connection) -> list[str]:
    """The columns step_library has now (before the install: the application's own)."""
    return [r[0] for r in conn.execute(
        "SELECT pg_catalog.quote_ident(attname) FROM pg_catalog.pg_attribute"
        " WHERE attrelid = 'public.step_library'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]


def oracle(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT difference, tree_id, source_node_id FROM stepsync.check_library()").fetchall()


# --- the catalog and the rows, for "changes nothing" ----------------------------------------------------------

EXTRA_CATALOG_SQL = r"""
SELECT 'namespace ' || n.nspname,
       pg_catalog.pg_get_userbyid(n.nspowner) || ' acl=' || coalesce(n.nspacl::text, '<default>')
       || ' -- ' || coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '<none>')
  FROM pg_catalog.pg_namespace AS n
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'relation ' || n.nspname || '.' || c.relname,
       c.relkind::text || ' owner=' || pg_catalog.pg_get_userbyid(c.relowner)
       || ' acl=' || coalesce(c.relacl::text, '<default>')
       || ' -- ' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '<none>')
  FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'routine ' || p.oid::pg_catalog.regprocedure::text,
       pg_catalog.pg_get_userbyid(p.proowner) || ' ' || pg_catalog.md5(pg_catalog.pg_get_functiondef(p.oid))
  FROM pg_catalog.pg_proc AS p JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'type ' || t.oid::pg_catalog.regtype::text, pg_catalog.pg_get_userbyid(t.typowner)
  FROM pg_catalog.pg_type AS t JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
"""

TABLES_SQL = r"""
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
  FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\_%'
 ORDER BY 1
"""


def catalog(conn: psycopg.Connection) -> dict[str, str]:
    """schema_snapshot plus every schema, relation, routine and type outside the system, with owners."""
    snapshot = schema_snapshot(conn)
    conn.execute("SELECT set_config('search_path', 'pg_catalog', false)")
    try:
        snapshot.update(dict(conn.execute(EXTRA_CATALOG_SQL).fetchall()))
    finally:
        conn.execute("SELECT set_config('search_path', '\"$user\", public', false)")
    return snapshot


def rows(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every row of every table outside the system, with its row version (xmin)."""
    return {table: conn.execute(f"SELECT t.xmin::text, t::text FROM {table} AS t ORDER BY 2, 1").fetchall()
            for (table,) in conn.execute(TABLES_SQL).fetchall()}


def state(conn: psycopg.Connection) -> tuple[dict, dict]:
    return catalog(conn), rows(conn)


def diff(before: dict, after: dict) -> list[str]:
    """The keys whose values differ, for readable assertion messages."""
    return [f"{k}:\n  before: {before.get(k)}\n  after:  {after.get(k)}"
            for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]


# --- the command line ------------------------------------------------------------------------------------------

@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def out(self) -> list[str]:
        """stdout's lines with text (rich's progress bar leaves empty lines behind)."""
        return [line for line in self.stdout.splitlines() if line.strip()]

    @property
    def err(self) -> list[str]:
        return self.stderr.splitlines()


class Cli:
    """`python -m stepsync.cli` in a subprocess, from a folder that is not the checkout."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd

    def __call__(self, url: str | None, *args: str, expect: int | None = 0, env: dict | None = None) -> Run:
        argv = [sys.executable, "-m", "stepsync.cli", *(["--database-url", url] if url else []), *args]
        environ = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
        environ.update(env or {})
        result = subprocess.run(argv, cwd=self.cwd, env=environ, capture_output=True, text=True, timeout=600)
        run = Run(result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr
        if expect is not None:
            assert run.returncode == expect, f"stepsync {' '.join(args)} exited {run.returncode}:\n{run.stderr}"
        return run


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    work = tmp_path / "elsewhere"
    work.mkdir()
    assert not str(work).startswith(str(REPO_ROOT))
    return Cli(work)


def as_role(url: str, role: str) -> str:
    """URL, connecting as ROLE (no password: the test cluster trusts local connections)."""
    parts = urlsplit(url)
    netloc = f"{role}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def ensure_role(conn: psycopg.Connection, role: str) -> None:
    if conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        conn.execute(f"CREATE ROLE {role} LOGIN")


# --- databases ---------------------------------------------------------------------------------------------------

@pytest.fixture
def new_db(server):
    """A maker of empty databases, dropped at the end of the test."""
    made: list[Db] = []

    def make() -> Db:
        name = server.new_name("adopt")
        server.create_database(name)
        db = Db(server, name)
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()
        server.drop_database(db.name)


@pytest.fixture
def app_db(new_db):
    """A maker of application databases (tests/app_schema.py), seeded unless told not to.

    app_owner gets CREATE on schema public: it created its tables there (from PostgreSQL 15 on,
    PUBLIC no longer has it), and stepsync's view goes there too; and CREATE on the database, so that
    it may install stepsync itself (the deploy role has it already).
    """

    def make(*, with_030: bool = False, with_seed: bool = True) -> Db:
        db = new_db()
        build_app_database(db.conn, with_030=with_030)
        db.conn.execute(f"GRANT CREATE ON SCHEMA public TO {APP_OWNER}")
        db.conn.execute(f'GRANT CREATE ON DATABASE "{db.name}" TO {APP_OWNER}')
        if with_seed:
            seed(db.conn)
        return db

    return make


def installed_line(flows: int, written: int, skipped: int = 0, verb: str = "installed stepsync revision") -> str:
    return (f"{verb} {HEAD}; backfill: {flows} flows in step, {written} library rows written or retired,"
            f" {skipped} skipped")


UP_TO_DATE = f"stepsync is up to date (revision {HEAD}); nothing to do"
UNINSTALLED = f"uninstalled stepsync (was at {HEAD}); the application's tables and rows stay"
UNINSTALLED_KEEPING = UNINSTALLED + "; the sync columns, keys and entries stay (--drop-columns removes them)"


# --- 1. the preflight --------------------------------------------------------------------------------------------

DROP_030_KEY = "ALTER TABLE public.step_library DROP CONSTRAINT uq_step_library_source;"
SYNCED_ROW = ("INSERT INTO public.step_library (title, step_type, content, source_tree_id, source_node_id,"
              " is_flow_synced) VALUES ('{title}', 'action', '{{}}', {tree}, {node}, {synced});")


def synced_row(title: str, tree: str | None, node: str | None, synced: str) -> str:
    return SYNCED_ROW.format(title=title, tree=f"'{tree}'" if tree else "NULL",
                             node=f"'{node}'" if node else "NULL", synced=synced)


@dataclass
class Refusal:
    setup: str
    lines: list[str]
    with_030: bool = False
    role: str = "postgres"


REFUSALS = {
    "missing table": Refusal(
        "DROP TABLE public.accounts CASCADE",
        ["public.accounts: table is missing: stepsync installs into an existing application schema; create it"
         " (docs/contract.md §1 lists its columns), or run `stepsync migrate` on an empty database"]),
    "missing column": Refusal(
        "ALTER TABLE public.trees DROP COLUMN is_public",
        ["public.trees.is_public: column is missing: add it (boolean, docs/contract.md §1)"]),
    "json, not jsonb": Refusal(
        "ALTER TABLE public.trees ALTER COLUMN tree_structure DROP DEFAULT,"
        " ALTER COLUMN tree_structure TYPE json",
        ["public.trees.tree_structure: column has type json, stepsync needs jsonb:"
         " ALTER TABLE public.trees ALTER COLUMN tree_structure TYPE jsonb"]),
    "not the owner": Refusal(
        "", ["database {db}: role app_client may not create schema stepsync here:"
             " GRANT CREATE ON DATABASE {db} TO app_client",
             "role app_client: is not the owner of public.step_library (app_owner) and may not act as it:"
             " connect as app_owner, or GRANT app_owner TO app_client"],
        role="app_client"),
    "two owners": Refusal(
        "ALTER TABLE public.trees OWNER TO app_other",
        ["public.trees, public.step_library: the tables have different owners (app_other, app_owner);"
         " the sync runs as one role that owns both: ALTER TABLE public.trees OWNER TO app_owner"]),
    "NOT NULL without a default": Refusal(
        "ALTER TABLE public.step_library ADD COLUMN legacy_code varchar(20) NOT NULL DEFAULT 'x';"
        " ALTER TABLE public.step_library ALTER COLUMN legacy_code DROP DEFAULT",
        ["public.step_library.legacy_code: column is NOT NULL without a default, and the sync does not fill it:"
         " ALTER TABLE public.step_library ALTER COLUMN legacy_code SET DEFAULT ... (or DROP NOT NULL)"]),
    "schema stepsync taken": Refusal(
        "CREATE SCHEMA stepsync; CREATE TABLE stepsync.things (id int)",
        ["schema stepsync: already exists and is not stepsync's: rename it (ALTER SCHEMA stepsync RENAME TO ...)"]),
    "view taken": Refusal(
        "CREATE VIEW public.step_library_entries AS SELECT id, title FROM public.step_library",
        ["view public.step_library_entries: already exists and is not stepsync's: rename or drop it"]),
    "no CREATE on schema public": Refusal(
        f"REVOKE CREATE ON SCHEMA public FROM {APP_OWNER}",
        ["schema public: the tables' owner app_owner may not create the view public.step_library_entries there:"
         " GRANT CREATE ON SCHEMA public TO app_owner"]),
    "030: duplicate keys": Refusal(
        DROP_030_KEY + synced_row("a", PROC, "p1", "true") + synced_row("b", PROC, "p1", "true"),
        ["public.step_library (source_tree_id, source_node_id): 1 pairs of rows share a key; the sync needs it"
         " unique: delete or merge the duplicates"],
        with_030=True),
    "030: hand-made rows with a source": Refusal(
        synced_row("a", PROC, "p1", "false"),
        ["public.step_library.source_tree_id, source_node_id: 1 rows that are not synced (is_flow_synced false)"
         " have a source: set is_flow_synced = true on the ones a flow owns, or clear source_tree_id and"
         " source_node_id on the others"],
        with_030=True),
    "030: is_flow_synced null": Refusal(
        synced_row("a", None, None, "NULL") + synced_row("b", None, None, "NULL"),
        ["public.step_library.is_flow_synced: 2 rows have is_flow_synced null: UPDATE public.step_library"
         " SET is_flow_synced = false WHERE is_flow_synced IS NULL"],
        with_030=True),
    "several at once": Refusal(
        DROP_030_KEY + synced_row("a", PROC, "p1", "true") + synced_row("b", PROC, "p1", "true")
        + synced_row("c", None, None, "NULL")
        + "ALTER TABLE public.trees ALTER COLUMN tree_structure DROP DEFAULT, ALTER COLUMN tree_structure TYPE json;"
          " ALTER TABLE public.users DROP COLUMN account_id CASCADE;"
          " CREATE VIEW public.step_library_entries AS SELECT 1 AS x; CREATE SCHEMA stepsync;",
        ["public.step_library (source_tree_id, source_node_id): 1 pairs of rows share a key; the sync needs it"
         " unique: delete or merge the duplicates",
         "public.step_library.is_flow_synced: 1 rows have is_flow_synced null: UPDATE public.step_library"
         " SET is_flow_synced = false WHERE is_flow_synced IS NULL",
         "public.trees.tree_structure: column has type json, stepsync needs jsonb:"
         " ALTER TABLE public.trees ALTER COLUMN tree_structure TYPE jsonb",
         "public.users.account_id: column is missing: add it (uuid, docs/contract.md §1)",
         "schema stepsync: already exists and is not stepsync's: rename it (ALTER SCHEMA stepsync RENAME TO ...)",
         "view public.step_library_entries: already exists and is not stepsync's: rename or drop it"],
        with_030=True),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_preflight_names_each_problem_and_changes_nothing(case, app_db, cli):
    refusal = REFUSALS[case]
    db = app_db(with_030=refusal.with_030)
    ensure_role(db.conn, "app_other")
    if refusal.setup:
        db.conn.execute(refusal.setup)
    before = state(db.conn)

    for args in (("install",), ("install", "--no-backfill")):
        run = cli(as_role(db.url, refusal.role), *args, expect=1)
        problems = [f"stepsync: {line.format(db=db.name)}" for line in refusal.lines]
        assert run.err == [*problems, f"stepsync: error: {len(problems)} problem(s) found; nothing was changed"]
        assert run.out == []
        after = state(db.conn)
        assert after == before, diff(before[0], after[0]) or diff(before[1], after[1])


@pytest.mark.parametrize("case", ["json, not jsonb", "030: duplicate keys"])
def test_sql_script_refuses_before_changing_anything(case, app_db, cli, tmp_path):
    """The script of `stepsync sql`, applied to a database with a problem, stops with the preflight's lines
    in DETAIL and leaves everything as it was (its own version table included)."""
    refusal = REFUSALS[case]
    db = app_db(with_030=refusal.with_030)
    db.conn.execute(refusal.setup)
    script = tmp_path / "install.sql"
    script.write_text(cli(None, "sql").stdout)
    before = state(db.conn)

    result = psql(db.url, script)
    assert result.returncode == 3, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(("psql:", "DETAIL:", "HINT:"))]
    assert errors[0].endswith("ERROR:  stepsync cannot be installed into this database")
    assert errors[1:] == [f"DETAIL:  {refusal.lines[0]}", f"HINT:  {installer._REFUSED_HINT}"]
    after = state(db.conn)
    assert after == before, diff(before[0], after[0]) or diff(before[1], after[1])


# --- 2. install, as three different roles ---------------------------------------------------------------------

STEPSYNC_OWNERS_SQL = """
SELECT 'schema stepsync', pg_catalog.pg_get_userbyid(n.nspowner)
  FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'stepsync'
UNION ALL
SELECT 'routine ' || p.oid::pg_catalog.regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner)
  FROM pg_catalog.pg_proc AS p WHERE p.pronamespace = 'stepsync'::pg_catalog.regnamespace
UNION ALL
SELECT 'type ' || t.oid::pg_catalog.regtype::text, pg_catalog.pg_get_userbyid(t.typowner)
  FROM pg_catalog.pg_type AS t WHERE t.typnamespace = 'stepsync'::pg_catalog.regnamespace
   AND t.typrelid NOT IN (SELECT c.oid FROM pg_catalog.pg_class AS c WHERE c.relkind = 'r')  -- follows its table
UNION ALL
SELECT 'relation ' || c.oid::pg_catalog.regclass::text, pg_catalog.pg_get_userbyid(c.relowner)
  FROM pg_catalog.pg_class AS c
 WHERE (c.relnamespace = 'stepsync'::pg_catalog.regnamespace AND c.relkind NOT IN ('c', 'i'))  -- these follow
    OR c.oid IN (pg_catalog.to_regclass('public.step_library_entries'),
                 pg_catalog.to_regclass('public.stepsync_version'),
                 pg_catalog.to_regclass('public.step_library_search_idx'),
                 pg_catalog.to_regclass('public.step_library_forked_from_id_idx'),
                 pg_catalog.to_regclass('public.step_library_source_key'))
"""


def owners(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(STEPSYNC_OWNERS_SQL).fetchall())


def client_publishes(db: Db) -> None:
    """app_client (SELECT, INSERT, UPDATE, DELETE on the tables, nothing else) publishes a flow and it syncs."""
    with psycopg.connect(as_role(db.url, "app_client"), autocommit=True) as client:
        client.execute("INSERT INTO public.trees (id, name, tree_type, tree_structure, account_id, author_id)"
                       " VALUES (%s, 'Key rotation', 'procedural', %s, %s, %s)",
                       (NEW, Jsonb(NEW_STRUCTURE), ACME, AUTHOR))
        client.execute("UPDATE public.trees SET status = 'published' WHERE id = %s", (NEW,))
        assert client.execute("SELECT source_node_id, title, visibility, is_active FROM public.step_library"
                              " WHERE source_tree_id = %s ORDER BY 1", (NEW,)).fetchall() == [
            ("n1", "Rotate the keys", "team", True), ("n2", "Tell the team", "team", True)]
        client.execute("UPDATE public.step_library SET usage_count = usage_count + 5, rating = 4.5, rating_count = 2"
                       " WHERE source_tree_id = %s AND source_node_id = 'n1'", (NEW,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            client.execute("UPDATE public.step_library SET title = 'mine' WHERE source_tree_id = %s", (NEW,))


@pytest.mark.parametrize("installer", ["postgres", APP_OWNER, "deployer"])
def test_install_as_superuser_owner_or_deploy_role(installer, app_db, cli):
    db = app_db()
    add_bad_flow(db.conn)
    app_before = schema_snapshot(db.conn)
    version_before = db.rows("SELECT version_num, xmin::text FROM public.alembic_version")
    trees_before = db.rows("SELECT id, xmin::text FROM public.trees ORDER BY id")
    app_columns = ", ".join(library_columns(db.conn))
    # The install gives each hand-made row its search vector (a new row version), and touches none of
    # the application's columns, updated_at included.
    hand_made_before = db.rows(f"SELECT {app_columns} FROM public.step_library")

    run = cli(as_role(db.url, installer), "install")
    assert run.out == [installed_line(flows=2, written=4, skipped=1)]
    assert run.err == [
        f"stepsync: stepsync backfill skipped flow {BAD} (Broken flow): flow {BAD} cannot be published:"
        ' node "b1" has no usable "title": it is missing (JSON path: $.steps[0].title)']

    # Everything of stepsync's belongs to the tables' owner, whoever installed it.
    found = owners(db.conn)
    assert len([k for k in found if k.startswith("routine ")]) >= 15
    assert {"schema stepsync", "type stepsync.library_node", "relation step_library_entries",
            "relation stepsync_version"} <= set(found)
    assert set(found.values()) == {APP_OWNER}, found

    # The backfill synced the listed flows and wrote nothing else.
    assert synced(db.conn) == SEEDED_LIBRARY
    assert db.rows("SELECT version_num, xmin::text FROM public.alembic_version") == version_before
    assert db.rows("SELECT id, xmin::text FROM public.trees ORDER BY id") == trees_before
    assert db.rows(f"SELECT {app_columns} FROM public.step_library WHERE NOT is_flow_synced") \
        == hand_made_before
    assert db.value("SELECT count(*) FROM public.tree_audit") == 0

    # The application's columns, indexes, constraints, grants and its trigger are as they were.
    app_after = schema_snapshot(db.conn)
    assert {k: app_after.get(k) for k in app_before} == app_before, diff(app_before, app_after)

    # A client publishes and the library syncs; the application's trigger still fires.
    client_publishes(db)
    assert db.value("SELECT count(*) FROM public.tree_audit") == 1
    db.conn.execute("UPDATE public.trees SET status = 'draft' WHERE id = %s", (BAD,))
    assert oracle(db.conn) == []
    assert db.rows("SELECT version_num, xmin::text FROM public.alembic_version") == version_before
    assert db.rows(f"SELECT version_num FROM public.{history.VERSION_TABLE}") == [(HEAD,)]


def test_search_works_on_the_application_column_types(app_db, cli):
    """search_steps over a library whose text columns are varchar (the application's String(n)): the rows come
    back with the result's declared types, through SQL and through `stepsync search`. updated_at is a
    timestamp without time zone here, which the install accepts too."""
    db = app_db()
    db.conn.execute("ALTER TABLE public.step_library ALTER COLUMN updated_at TYPE timestamp")
    assert db.value("SELECT atttypid::regtype::text FROM pg_attribute"
                    " WHERE attrelid = 'public.step_library'::regclass AND attname = 'title'") == "character varying"
    cli(as_role(db.url, "deployer"), "install")
    found = "SELECT title, source_node_id, rank, complete FROM stepsync.search_steps(%s, %s)"
    assert db.rows(found, (AUTHOR, "cable")) == [("Reseat the cable", "a1", 1.0, True)]
    assert db.rows(found, (AUTHOR, "filter")) == [("Clean the filter", None, 1.0, True)]
    assert db.rows(found, (None, "filter")) == []       # a team step: not for a viewer without an account
    run = cli(as_role(db.url, "app_client"), "search", "cable", "--as", str(AUTHOR), "--json")
    assert [(r["title"], r["source_node_id"]) for r in json.loads(run.stdout)] == [("Reseat the cable", "a1")]


# --- 3. install again at head --------------------------------------------------------------------------------

def test_install_again_at_head_writes_nothing(app_db, cli):
    db = app_db()
    cli(as_role(db.url, "deployer"), "install")
    client_publishes(db)
    before = state(db.conn)
    assert {"public.step_library", "public.trees", "public.stepsync_version"} <= set(before[1])

    for role in ("deployer", APP_OWNER, "postgres"):
        for args in (("install",), ("install", "--no-backfill")):
            run = cli(as_role(db.url, role), *args)
            assert run.out == [UP_TO_DATE]
            assert run.err == []
            after = state(db.conn)
            assert after == before, diff(before[0], after[0]) or diff(before[1], after[1])


def test_install_upgrades_an_older_revision_and_leaves_storage_settings_alone(app_db, cli):
    """A database installed at stepsync_0002 is upgraded by `stepsync install`; stepsync_0003's fillfactor
    is for the standalone path only, so the application's tables keep their storage settings."""
    db = app_db()
    db.conn.execute("ALTER TABLE public.trees SET (fillfactor = 90)")
    installer._upgrade_with_retries(as_role(db.url, "deployer"), "stepsync_0002", say=print)
    options = ("SELECT relname, reloptions FROM pg_class WHERE oid IN ('public.step_library'::regclass,"
               " 'public.trees'::regclass) ORDER BY 1")
    assert db.rows(options) == [("step_library", None), ("trees", ["fillfactor=90"])]
    assert db.value("SELECT obj_description('stepsync'::regnamespace, 'pg_namespace')").endswith(
        "Revision stepsync_0002.")
    old = db.value("SELECT pg_get_functiondef('stepsync.search_steps'::regproc)")

    run = cli(as_role(db.url, "deployer"), "install", "--no-backfill")
    assert run.out == [f"upgraded stepsync from stepsync_0002 to {HEAD}; no backfill (run `stepsync install` again,"
                       " or `stepsync resync --all`, later to sync the flows listed now)"]
    assert run.err == []
    assert db.rows(options) == [("step_library", None), ("trees", ["fillfactor=90"])]
    assert db.value("SELECT obj_description('stepsync'::regnamespace, 'pg_namespace')").endswith(
        f"Revision {HEAD}.")
    assert db.rows(f"SELECT version_num FROM public.{history.VERSION_TABLE}") == [(HEAD,)]
    new = db.value("SELECT pg_get_functiondef('stepsync.search_steps'::regproc)")
    ranked = db.value("SELECT pg_get_functiondef('stepsync._search_ranked'::regproc)")   # stepsync_0005's split
    assert new != old and "c_dense_phrase" in ranked and "c_dense_phrase" not in old
    assert db.value("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'stepsync.search_steps'::regproc") \
        == APP_OWNER
    client_publishes(db)
    assert oracle(db.conn) == []


# --- 4. uninstall / install round trips ---------------------------------------------------------------------

def test_uninstall_install_round_trip_and_drop_columns(app_db, cli):
    db = app_db()
    original_columns = library_columns(db.conn)
    before_install = catalog(db.conn)

    cli(as_role(db.url, "deployer"), "install")
    client_publishes(db)
    db.conn.execute("UPDATE public.step_library SET usage_count = 7, rating = 3.25, rating_count = 4"
                    " WHERE source_tree_id = %s AND source_node_id = 'p1'", (PROC,))
    fork = db.value("SELECT stepsync.fork_step(id, %s) FROM public.step_library"
                    " WHERE source_tree_id = %s AND source_node_id = 'a1'", (AUTHOR, TROUBLE))
    kept = entries(db.conn)
    assert len(kept) == 6

    # uninstall, as the owner (a deploy role installed): the entries and the sync columns stay.
    run = cli(as_role(db.url, APP_OWNER), "uninstall")
    assert (run.out, run.err) == ([UNINSTALLED_KEEPING], [])
    assert db.value("SELECT to_regnamespace('stepsync') IS NULL AND to_regclass('public.step_library_entries') IS NULL"
                    " AND to_regclass('public.stepsync_version') IS NULL"
                    " AND to_regclass('public.step_library_search_idx') IS NULL") is True
    assert db.rows("SELECT tgname FROM pg_catalog.pg_trigger WHERE NOT tgisinternal ORDER BY 1") \
        == [("trg_trees_audit",)]
    assert entries(db.conn) == kept
    assert db.rows("SELECT version_num FROM public.alembic_version") == [("046_add_ratings",)]

    # install again, as the owner: every entry comes back as it was. (Each row gets a new version: the
    # search vector, which uninstall dropped with its triggers so that it could not go stale, is rebuilt.)
    run = cli(as_role(db.url, APP_OWNER), "install")
    assert run.out == [installed_line(flows=3, written=0)]
    assert {key: value[:-1] for key, value in entries(db.conn).items()} == {
        key: value[:-1] for key, value in kept.items()}
    assert db.value("SELECT forked_from_id IS NOT NULL FROM public.step_library WHERE id = %s", (fork,)) is True
    assert oracle(db.conn) == []

    # uninstall --drop-columns: the catalog is exactly as before the first install, synced rows deleted,
    # every other row intact.
    app_rows = {table: content for table, content in rows(db.conn).items()
                if table not in ("public.step_library", "public.stepsync_version", "stepsync.backfill_progress",
                                 "stepsync.row_security")}
    kept_rows = db.rows(f"SELECT {', '.join(original_columns)}, xmin::text FROM public.step_library"
                        " WHERE NOT is_flow_synced AND forked_from_id IS NULL ORDER BY id")
    fork_row = db.rows(f"SELECT {', '.join(original_columns)} FROM public.step_library WHERE id = %s", (fork,))
    run = cli(as_role(db.url, "deployer"), "uninstall", "--drop-columns")
    assert (run.out, run.err) == ([UNINSTALLED], [])
    after = catalog(db.conn)
    assert after == before_install, diff(before_install, after)
    assert {t: c for t, c in rows(db.conn).items() if t != "public.step_library"} == app_rows
    assert db.rows(f"SELECT {', '.join(original_columns)}, xmin::text FROM public.step_library"
                   " WHERE id <> %s ORDER BY id", (fork,)) == kept_rows
    assert db.rows(f"SELECT {', '.join(original_columns)} FROM public.step_library WHERE id = %s", (fork,)) == fork_row
    assert db.value("SELECT count(*) FROM public.step_library") == 2   # the hand-made step and the fork

    # Installing again afterwards works: the flows' entries are made anew.
    run = cli(as_role(db.url, APP_OWNER), "install")
    assert run.out == [installed_line(flows=3, written=6)]
    assert synced(db.conn)[:4] == SEEDED_LIBRARY
    assert oracle(db.conn) == []
    client_publishes_again(db)


def client_publishes_again(db: Db) -> None:
    with psycopg.connect(as_role(db.url, "app_client"), autocommit=True) as client:
        client.execute("UPDATE public.trees SET tree_structure = %s WHERE id = %s",
                       (Jsonb({"steps": NEW_STRUCTURE["steps"][:1]}), NEW))
    assert db.rows("SELECT source_node_id, is_active FROM public.step_library WHERE source_tree_id = %s"
                   " ORDER BY 1", (NEW,)) == [("n1", True), ("n2", False)]


# --- 5. the seed design's migration 030 -------------------------------------------------------------------------

APP_SYNCED_SQL = """
INSERT INTO public.trees (id, name, tree_type, tree_structure, status, account_id, author_id)
VALUES (%(gone)s, 'Deleted later', 'procedural', '{"steps": [{"id": "z1", "type": "procedure_step", "title": "Z"}]}',
        'published', %(acme)s, %(author)s);
INSERT INTO public.step_library (id, title, step_type, content, visibility, created_by, account_id, usage_count,
                                 rating, rating_count, is_active, source_tree_id, source_node_id, is_flow_synced,
                                 last_synced_at)
VALUES ('e0000000-0000-4000-8000-000000000001', 'Stop the service', 'action', %(p1)s, 'team', %(author)s, %(acme)s,
        11, 4.50, 2, true, %(proc)s, 'p1', true, '2026-01-01'),                          -- current
       ('e0000000-0000-4000-8000-000000000002', 'Backup', 'action', '{"instructions": "Backup"}', 'team', %(author)s,
        %(acme)s, 12, 3.00, 1, true, %(proc)s, 'p2', true, '2026-01-01'),                -- stale content
       ('e0000000-0000-4000-8000-000000000003', 'Removed step', 'action', '{}', 'team', %(author)s, %(acme)s,
        13, NULL, 0, true, %(proc)s, 'p_gone', true, '2026-01-01'),                      -- node removed
       ('e0000000-0000-4000-8000-000000000004', 'Old step', 'action', '{}', 'team', %(author)s, %(acme)s,
        14, 2.00, 1, true, %(off)s, 'x1', true, '2026-01-01'),                           -- flow deactivated
       ('e0000000-0000-4000-8000-000000000005', 'Z', 'action', '{}', 'team', %(author)s, %(acme)s,
        15, 5.00, 3, true, %(gone)s, 'z1', true, '2026-01-01');                          -- flow deleted below
DELETE FROM public.trees WHERE id = %(gone)s;
"""


def test_030_columns_and_app_synced_rows_are_adopted(app_db, cli):
    db = app_db(with_030=True)
    run_sql(db.conn, APP_SYNCED_SQL, {"gone": GONE, "acme": ACME, "author": AUTHOR, "proc": PROC, "off": OFF,
                                     "p1": Jsonb(P1_CONTENT)})
    assert db.value("SELECT source_tree_id FROM public.step_library WHERE source_node_id = 'z1'") is None
    before_install = catalog(db.conn)
    app_rows = {k: v for k, v in rows(db.conn).items() if k != "public.step_library"}
    before = {r[0]: r[1:] for r in db.rows(
        "SELECT id::text, usage_count, rating, rating_count, created_at, xmin::text FROM public.step_library")}

    run = cli(as_role(db.url, APP_OWNER), "install")
    # PROC, TROUBLE and OFF; p2 rewritten, p_gone and x1 retired, a1 and s1 added (z1 is retired as an orphan).
    assert run.out == [installed_line(flows=3, written=5)]
    assert run.err == []

    after = {r[0]: r[1:] for r in db.rows(
        "SELECT id::text, usage_count, rating, rating_count, created_at, xmin::text FROM public.step_library")}
    for entry_id, (usage, rating, rating_count, created_at, _xmin) in before.items():
        assert after[entry_id][:4] == (usage, rating, rating_count, created_at), entry_id
    # The current entry is adopted as it is: the sync does not rewrite it (its last_synced_at stays; the
    # install only gives it its search vector).
    assert db.value("SELECT last_synced_at = %s::timestamptz FROM public.step_library WHERE id = %s",
                    ("2026-01-01", "e0000000-0000-4000-8000-000000000001")) is True
    assert dict(db.rows("SELECT id::text, is_active FROM public.step_library WHERE id::text LIKE 'e0000000-%'")) == {
        "e0000000-0000-4000-8000-000000000001": True, "e0000000-0000-4000-8000-000000000002": True,
        "e0000000-0000-4000-8000-000000000003": False, "e0000000-0000-4000-8000-000000000004": False,
        "e0000000-0000-4000-8000-000000000005": False}
    assert synced(db.conn) == sorted([
        *SEEDED_LIBRARY,
        (PROC, "p_gone", "Removed step", "action", {}, "team", False),
        (OFF, "x1", "Old step", "action", {}, "team", False),
        (None, "z1", "Z", "action", {}, "team", False),
    ], key=by_source)
    assert oracle(db.conn) == []

    # The application's key is adopted under its own name: no second unique index, no second foreign key.
    assert db.rows("SELECT indexrelid::regclass::text FROM pg_catalog.pg_index"
                   " WHERE indrelid = 'public.step_library'::regclass AND indisunique ORDER BY 1") == [
        ("pk_step_library",), ("uq_step_library_source",)]
    assert db.rows("SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = 'public.step_library'::regclass"
                   " AND (contype = 'u' OR (contype = 'f' AND confrelid = 'public.trees'::regclass))"
                   " AND conkey @> ARRAY[(SELECT attnum FROM pg_catalog.pg_attribute"
                   "   WHERE attrelid = 'public.step_library'::regclass AND attname = 'source_tree_id')]"
                   " ORDER BY 1") == [("step_library_source_tree_id_fkey",), ("uq_step_library_source",)]
    assert db.value("SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'public.step_library'::regclass"
                    " AND attname = 'is_flow_synced'") is True
    client_publishes(db)
    assert oracle(db.conn) == []

    # uninstall --drop-columns: the 030 columns, key and foreign key were the application's and stay, and
    # so do the rows they mark as synced (the application had them before; without stepsync it syncs them
    # itself again). What stepsync added goes: forked_from_id, its checks and indexes. The catalog is as
    # before the install.
    synced_rows = db.rows("SELECT t.xmin::text, t.id, t.source_tree_id, t.source_node_id, t.usage_count"
                          " FROM public.step_library AS t ORDER BY t.id")
    run = cli(as_role(db.url, APP_OWNER), "uninstall", "--drop-columns")
    assert (run.out, run.err) == ([UNINSTALLED], [])
    after_uninstall = catalog(db.conn)
    assert after_uninstall == before_install, diff(before_install, after_uninstall)
    assert db.rows("SELECT t.xmin::text, t.id, t.source_tree_id, t.source_node_id, t.usage_count"
                   " FROM public.step_library AS t ORDER BY t.id") == synced_rows
    app_rows_after = {k: v for k, v in rows(db.conn).items() if k != "public.step_library"}
    assert app_rows_after["public.alembic_version"] == app_rows["public.alembic_version"]
    assert app_rows_after["public.accounts"] == app_rows["public.accounts"]

    # And stepsync installs again over what it left.
    run = cli(as_role(db.url, APP_OWNER), "install")
    assert run.out == [installed_line(flows=3, written=0)]
    assert oracle(db.conn) == []


# --- 6. the SQL script ----------------------------------------------------------------------------------------

def psql_binary() -> str:
    """psql from the server's bin folder, else the one on PATH."""
    try:
        candidate = find_bin_dir() / "psql"
    except PgBinError:
        candidate = None
    if candidate is not None and candidate.exists():
        return str(candidate)
    found = shutil.which("psql")
    if found is None:
        pytest.skip("psql is neither in the test server's bin folder nor on PATH: these tests apply the script"
                    " of `stepsync sql` with psql, as a DBA would (install postgresql-client to run them)")
    return found


def psql(url: str, script: Path) -> subprocess.CompletedProcess:
    return subprocess.run([psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(script)],
                          capture_output=True, text=True, timeout=600)


def test_sql_script_gives_what_install_gives(app_db, cli, tmp_path):
    # Made without connecting anywhere: an unreachable server in the environment, or as the option.
    script = cli(None, "sql", env={"STEPSYNC_DATABASE_URL": UNREACHABLE})
    assert script.err == []
    assert cli(UNREACHABLE, "sql").stdout == script.stdout
    assert script.stdout.startswith(f"-- stepsync {HEAD}: install into an existing application database.\n")
    assert not (cli.cwd / ".stepsync").exists()
    path = tmp_path / "install.sql"
    path.write_text(script.stdout)

    by_script, by_install = app_db(), app_db()
    result = psql(as_role(by_script.url, APP_OWNER), path)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr
    cli(as_role(by_install.url, APP_OWNER), "install")

    assert library(by_script.conn) == library(by_install.conn)
    assert synced(by_script.conn) == SEEDED_LIBRARY
    assert oracle(by_script.conn) == []
    script_catalog, install_catalog = catalog(by_script.conn), catalog(by_install.conn)
    assert script_catalog == install_catalog, diff(install_catalog, script_catalog)
    for db in (by_script, by_install):
        assert db.rows(f"SELECT version_num FROM public.{history.VERSION_TABLE}") == [(HEAD,)]
        assert db.rows("SELECT version_num FROM public.alembic_version") == [("046_add_ratings",)]
    client_publishes(by_script)
    # `stepsync install` sees the script's install as its own.
    assert cli(as_role(by_script.url, APP_OWNER), "install").out == [UP_TO_DATE]


def test_sql_script_without_backfill_then_resync(app_db, cli, tmp_path):
    path = tmp_path / "install.sql"
    path.write_text(cli(None, "sql", "--no-backfill", env={"STEPSYNC_DATABASE_URL": UNREACHABLE}).stdout)
    db = app_db()
    result = psql(as_role(db.url, APP_OWNER), path)
    assert result.returncode == 0, result.stderr
    assert synced(db.conn) == []
    cli(as_role(db.url, APP_OWNER), "resync", "--all")
    assert synced(db.conn) == SEEDED_LIBRARY
    assert oracle(db.conn) == []


# --- 7. --no-backfill, then resync --all -----------------------------------------------------------------------

def test_install_without_backfill_then_resync_all(app_db, cli):
    late, full = app_db(with_030=True), app_db(with_030=True)
    for db in (late, full):
        run_sql(db.conn, APP_SYNCED_SQL, {"gone": GONE, "acme": ACME, "author": AUTHOR, "proc": PROC, "off": OFF,
                                         "p1": Jsonb(P1_CONTENT)})

    run = cli(as_role(late.url, APP_OWNER), "install", "--no-backfill")
    assert run.out == [f"installed stepsync revision {HEAD}; no backfill (run `stepsync install` again, or"
                       " `stepsync resync --all`, later to sync the flows listed now)"]
    assert run.err == []
    assert {r[0] for r in oracle(late.conn)} != set()
    cli(as_role(late.url, APP_OWNER), "resync", "--all")
    cli(as_role(full.url, APP_OWNER), "install")

    assert library(late.conn) == library(full.conn)
    assert oracle(late.conn) == []
    assert catalog(late.conn) == catalog(full.conn)


# --- 8. the tables change owner after the install -------------------------------------------------------------

def test_tables_change_owner_after_a_superuser_install(app_db, cli):
    db = app_db()
    ensure_role(db.conn, "app_owner2")
    cli(db.url, "install")
    assert set(owners(db.conn).values()) == {APP_OWNER}
    for table in ("accounts", "users", "trees", "step_library"):
        db.conn.execute(f"ALTER TABLE public.{table} OWNER TO app_owner2")

    # The sync's functions still run as app_owner, which no longer has any right on the tables.
    with psycopg.connect(as_role(db.url, "app_client"), autocommit=True) as client:
        client.execute("INSERT INTO public.trees (id, name, tree_type, tree_structure, account_id, author_id)"
                       " VALUES (%s, 'Key rotation', 'procedural', %s, %s, %s)",
                       (NEW, Jsonb(NEW_STRUCTURE), ACME, AUTHOR))
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as failed:
            client.execute("UPDATE public.trees SET status = 'published' WHERE id = %s", (NEW,))
    assert str(failed.value).splitlines()[0] == "permission denied for table step_library"
    assert db.value("SELECT status FROM public.trees WHERE id = %s", (NEW,)) == "draft"

    # `stepsync install` again gives stepsync's objects to the new owner, and publishing works again.
    # The schema, every routine, the row type and the view and version table: indexes follow their
    # table, and an array type its element type, by themselves.
    moved = len([k for k in owners(db.conn) if not k.endswith("[]")
                 and not (k.startswith("relation ") and (k.endswith("_idx") or k.endswith("_key")))])
    run = cli(db.url, "install")
    assert run.out == [f"stepsync is at revision {HEAD}; the tables changed owner since the install, so {moved} of"
                       " its objects were given to their owner"]
    assert set(owners(db.conn).values()) == {"app_owner2"}, owners(db.conn)
    db.conn.execute("DELETE FROM public.trees WHERE id = %s", (NEW,))
    client_publishes(db)
    assert oracle(db.conn) == []
    assert cli(db.url, "install").out == [UP_TO_DATE]


# --- 9. a database the old stepsync migrated --------------------------------------------------------------------

LEGACY_ENV = '''\
"""A tiny alembic environment that runs stepsync's old revisions (0001 ... 0005) into alembic_version."""
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, pool

import stepsync.frozen

# The old revisions' frozen SQL is a test fixture now (tests/legacy/sql/), not part of the package:
# stepsync.frozen reads it from there while they run (this process only, put back afterwards).
packaged = stepsync.frozen.FROZEN_SQL_DIR
stepsync.frozen.FROZEN_SQL_DIR = Path(context.config.attributes["frozen_sql"])
try:
    engine = create_engine(context.config.attributes["url"], poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True, version_table="alembic_version")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
finally:
    stepsync.frozen.FROZEN_SQL_DIR = packaged
'''


def legacy_database(db: Db, folder: Path) -> None:
    """DB migrated by the old stepsync: its revisions 0001 ... 0005 with public.alembic_version.

    They are fixtures (tests/legacy/: the revisions as they shipped, their frozen SQL beside them); the
    package keeps only their ids (stepsync.history.LEGACY_IDS), to move such a database to stepsync_version."""
    from alembic import command
    from alembic.config import Config

    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(LEGACY_ENV)
    for revision in sorted((REPO_ROOT / "tests" / "legacy" / "versions").glob("*.py")):
        shutil.copy(revision, folder / "versions" / revision.name)
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.attributes["frozen_sql"] = str(REPO_ROOT / "tests" / "legacy" / "sql")
    config.attributes["url"] = db.url.replace("postgresql://", "postgresql+psycopg://", 1)
    command.upgrade(config, "head")
    assert db.rows("SELECT version_num FROM public.alembic_version") == [("0005",)]


def test_legacy_ids_move_to_the_version_table(new_db, cli, tmp_path):
    fresh = new_db()
    cli(fresh.url, "migrate")

    for command in ("migrate", "install"):
        db = new_db()
        legacy_database(db, tmp_path / command)
        seed(db.conn)                       # published through the old triggers: the old sync made the entries
        db.conn.execute("UPDATE public.step_library SET usage_count = 9, rating = 4.25, rating_count = 4"
                        " WHERE source_node_id = 'p2'")
        db.conn.execute("UPDATE public.trees SET status = 'published' WHERE id = %s", (DRAFT,))
        kept = {k: v[:5] for k, v in entries(db.conn).items()}
        assert len(kept) == 5

        run = cli(db.url, command)
        if command == "migrate":
            assert run.out == [f"migrated {db.url} to head"]
        else:
            assert run.out[0].startswith(f"upgraded stepsync from 0005 to {HEAD}; backfill: 3 flows in step,")
        assert db.value("SELECT to_regclass('public.alembic_version')") is None
        assert db.rows(f"SELECT version_num FROM public.{history.VERSION_TABLE}") == [(HEAD,)]
        assert db.value(f"SELECT obj_description('public.{history.VERSION_TABLE}'::regclass, 'pg_class')") \
            == history.STANDALONE_COMMENT
        assert {k: v[:5] for k, v in entries(db.conn).items()} == kept
        assert oracle(db.conn) == []
        legacy, new = catalog(db.conn), catalog(fresh.conn)
        assert legacy == new, diff(new, legacy)
        assert cli(db.url, "install").out == [UP_TO_DATE]
