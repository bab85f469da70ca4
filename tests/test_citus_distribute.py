"""`stepsync distribute` and `stepsync migrate` on a Citus coordinator (docs/contract.md §11.2): the
application's tables laid out as §11.1, every row kept, stepsync installed.

What a user would check: local tables with rows (ids, usage counts, ratings, hand-made rows, forks,
synced rows whose flow was deleted, an application column of their own, a varchar column), with and
without the single-node stepsync installed, become reference tables and tables distributed by id and
tree_key, co-located, with the keys §11.1 names, and hold exactly the same rows; laid-out tables get
nothing; a database without Citus, a worker, or tables Citus would refuse are refused in lines that
say why, changing nothing; the statements `stepsync install` prints are exact.

CI cannot run Citus (no reachable package registry ships it): these tests run only when
STEPSYNC_CITUS_DSN names a superuser URL of the coordinator of an existing cluster, and are skipped
without it. Each test gets a fresh database on every node (created through the coordinator with
citus.enable_create_database_propagation), dropped at the end; the citus extension goes into it on
every node, the workers added, as tests/test_citus_install.py does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.rows import dict_row

from flows import Flows, content, step
from stepsync import distribute
from stepsync.database import StepsyncError
from test_citus_install import HEAD, LAID_OUT  # the newest revision; the tables as docs/contract.md §11.1 lays them out

DSN_ENV = "STEPSYNC_CITUS_DSN"
DSN = os.environ.get(DSN_ENV)

pytestmark = pytest.mark.skipif(
    not DSN, reason=f"{DSN_ENV} is not set: these tests need an existing Citus cluster (docs/scaling.md §2.0)")

TABLES = ("accounts", "users", "trees", "step_library")
DB_DIR = Path(__file__).resolve().parents[1] / "db"
# The four tables as the application had them before stepsync (stepsync_0001 creates them so), and as
# they stand on one node with stepsync's columns and keys in them (db/tables/).
APPLICATION_TABLES = DB_DIR / "migrations" / "sql" / "stepsync_0001" / "application_tables.sql"
SINGLE_NODE_TABLES = [DB_DIR / "tables" / f"{name}.sql" for name in TABLES]

# What §11.1 asks of pg_dist_partition: (table, partmethod, repmodel, distribution column).
LAYOUT = [("accounts", "n", "t", None), ("step_library", "h", "s", "tree_key"), ("trees", "h", "s", "id"),
          ("users", "n", "t", None)]


def url_for(dbname: str, *, port: int | None = None) -> str:
    """STEPSYNC_CITUS_DSN (a postgresql:// URL) with another database, and another port for a worker."""
    parts = urlsplit(DSN or "")
    netloc = parts.netloc if port is None else f"{parts.netloc.rsplit(':', 1)[0]}:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{dbname}", parts.query, parts.fragment))


def workers() -> list[tuple[str, int]]:
    with psycopg.connect(DSN) as admin:
        return admin.execute("SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary'"
                             " AND groupid <> 0 ORDER BY nodeport").fetchall()


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """A fresh database on every node of the cluster, without the citus extension yet; its coordinator's URL."""
    name = f"stepsync_citus_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        admin.execute("SET citus.enable_create_database_propagation = on")
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield url_for(name)
        finally:
            drop_database(admin, name)


def drop_database(admin: psycopg.Connection, name: str) -> None:
    """DROP DATABASE on every node. Citus's maintenance daemons keep connections to the database on the
    workers, and one that reconnects can make a worker refuse the drop (55006, "being accessed by other
    users") after the coordinator marked its own copy invalid; a drop tried again then fails on the
    workers that did drop theirs (3D000). So: tried again a few times, then node by node."""
    for _ in range(3):
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except psycopg.errors.ObjectInUse:
            time.sleep(1)
        except psycopg.errors.InvalidCatalogName:
            break
    for _, port in workers():
        with psycopg.connect(url_for("postgres", port=port), autocommit=True) as worker:
            worker.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.execute("SET citus.enable_create_database_propagation = off")
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def add_citus(url: str) -> None:
    """The citus extension in URL's database on every node, the coordinator and the workers added."""
    with psycopg.connect(DSN, autocommit=True) as admin:
        coordinator = admin.execute("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid = 0").fetchone()
    for _, port in workers():
        with psycopg.connect(url_for(urlsplit(url).path.lstrip("/"), port=port), autocommit=True) as worker:
            worker.execute("CREATE EXTENSION citus")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citus")
        if coordinator is not None:
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)", coordinator)
        for host, port in workers():
            conn.execute("SELECT citus_add_node(%s, %s)", (host, port))


@pytest.fixture
def citus_db(fresh_db: str) -> str:
    """A fresh database with the citus extension on every node of the cluster; its coordinator's URL."""
    add_citus(fresh_db)
    return fresh_db


def run(url: str, *args: str) -> subprocess.CompletedProcess:
    exe = [sys.executable, "-m", "stepsync.cli", "--database-url", url, *args]
    env = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
    result = subprocess.run(exe, env=env, capture_output=True, text=True, timeout=600)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def catalog(url: str) -> list[tuple]:
    """Every relation, constraint, function, trigger and Citus table outside the system schemas."""
    with psycopg.connect(url) as conn:
        citus = ("" if conn.execute("SELECT to_regclass('pg_catalog.pg_dist_partition')").fetchone()[0] is None
                 else " UNION ALL SELECT 'citus', logicalrelid::text, partmethod::text FROM pg_dist_partition")
        return conn.execute(
            "SELECT 'relation', n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c"
            "  JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'citus', 'citus_internal',"
            "                         'columnar', 'columnar_internal')"
            "   AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'"
            " UNION ALL SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint"
            "  WHERE connamespace = 'public'::regnamespace"
            " UNION ALL SELECT 'function', oid::regprocedure::text, '' FROM pg_proc"
            "  WHERE pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
            "    AND pronamespace::regnamespace::text NOT IN ('citus', 'citus_internal', 'columnar',"
            "                                                 'columnar_internal')"
            " UNION ALL SELECT 'trigger', tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
            + citus + " ORDER BY 1, 2, 3").fetchall()


def layout(conn: psycopg.Connection) -> list[tuple]:
    """The four tables in pg_dist_partition, and whether trees and step_library share a co-location group."""
    rows = conn.execute(
        "SELECT logicalrelid::text, partmethod::text, repmodel::text,"
        "       CASE WHEN partkey IS NOT NULL THEN column_to_column_name(logicalrelid, partkey) END"
        "  FROM pg_dist_partition WHERE logicalrelid = ANY('{accounts,users,trees,step_library}'::regclass[])"
        " ORDER BY 1").fetchall()
    groups = conn.execute("SELECT count(DISTINCT colocationid) FROM pg_dist_partition"
                          " WHERE logicalrelid IN ('public.trees'::regclass, 'public.step_library'::regclass)"
                          ).fetchone()[0]
    assert groups == 1, "trees and step_library are not co-located"
    return rows


def constraints(conn: psycopg.Connection, table: str) -> dict[str, str]:
    return dict(conn.execute("SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint"
                             " WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f')",
                             (table,)).fetchall())


KEPT = ("id, title, step_type, content, visibility, created_by, account_id, usage_count, rating, rating_count,"
        " is_active, created_at, updated_at, source_tree_id, source_node_id, is_flow_synced, last_synced_at,"
        " forked_from_id, ticket")


def rows(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every row of the four tables, by id, as the application reads them."""
    return {"accounts": conn.execute("SELECT * FROM accounts ORDER BY id").fetchall(),
            "users": conn.execute("SELECT * FROM users ORDER BY id").fetchall(),
            "trees": conn.execute("SELECT id, name, tree_type, tree_structure, status, is_active, account_id,"
                                  " author_id, created_at, updated_at, region FROM trees ORDER BY id").fetchall(),
            "step_library": conn.execute(f"SELECT {KEPT} FROM step_library ORDER BY id").fetchall()}


def every_row(conn: psycopg.Connection) -> dict[str, list[dict]]:
    """Every row of the four tables, every column, by id."""
    with conn.cursor(row_factory=dict_row) as cur:
        return {t: cur.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}


def procedure(*titles: str) -> dict:
    return {"steps": [step(f"s{i}", title, content=content(f"Do {title}.")) for i, title in enumerate(titles)]}


def test_distribute_lays_out_a_single_node_install_and_keeps_every_row(fresh_db):
    # One PostgreSQL server with stepsync, its application columns and rows; then Citus is added.
    assert run(fresh_db, "migrate").returncode == 0
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE step_library ADD COLUMN ticket varchar(40)")
        conn.execute("ALTER TABLE trees ADD COLUMN region varchar(20) NOT NULL DEFAULT 'eu'")
        flows = Flows(conn)
        kept, gone = flows.create(procedure("Drain", "Restart")), flows.create(procedure("Check", "Fix"))
        flows.publish(kept)
        flows.publish(gone)
        conn.execute("UPDATE step_library SET usage_count = 7, rating = 4.25, rating_count = 4, ticket = 'OPS-1'"
                     " WHERE source_tree_id = %s", (kept,))
        hand = conn.execute("INSERT INTO step_library (title, step_type, content, visibility, created_by,"
                            " usage_count, rating, rating_count) VALUES ('Reboot', 'action',"
                            " '{\"instructions\": \"Reboot it.\"}', 'public', %s, 3, 2.50, 2) RETURNING id",
                            (flows.actors.author,)).fetchone()[0]
        synced = conn.execute("SELECT id FROM step_library WHERE source_tree_id = %s LIMIT 1", (kept,)).fetchone()[0]
        fork = conn.execute("SELECT stepsync.fork_step(%s, %s)", (synced, flows.actors.author)).fetchone()[0]
        conn.execute("DELETE FROM trees WHERE id = %s", (gone,))   # its entries stay, retired, source_tree_id NULL
        before = rows(conn)
    assert len(before["step_library"]) == 6
    add_citus(fresh_db)

    result = run(fresh_db, "distribute")

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith(f"removed the single-node stepsync ({HEAD}), keeping its columns and"
                                    " rows; laid out the tables as docs/contract.md §11.1 (")
    assert "kept 2 accounts, 2 users, 1 flows and 6 library rows, checked by count and checksum" in result.stdout
    assert "installed stepsync revision" in result.stdout
    with psycopg.connect(fresh_db) as conn:
        assert layout(conn) == LAYOUT
        assert rows(conn) == before
        keys = dict(conn.execute("SELECT id, tree_key FROM step_library").fetchall())
        origins = dict(conn.execute("SELECT id, source_tree_id FROM step_library").fetchall())
        assert {i for i, k in keys.items() if k == kept} == {i for i, t in origins.items() if t == kept}
        others = [keys[i] for i in keys if origins[i] is None]   # the deleted flow's entries, hand-made, the fork
        assert len(others) == 4 and len(set(others)) == 4 and gone not in others
        assert {hand, fork} <= set(keys)
        library = constraints(conn, "step_library")
        assert library["step_library_pkey"] == "PRIMARY KEY (tree_key, id)"
        assert library["step_library_source_key"] == "UNIQUE (tree_key, source_node_id)"
        assert sorted(d for d in library.values() if d.startswith("FOREIGN KEY")) == [
            "FOREIGN KEY (account_id) REFERENCES accounts(id)", "FOREIGN KEY (created_by) REFERENCES users(id)"]
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                            " WHERE attrelid = 'step_library'::regclass AND attname = 'ticket'").fetchone() == (
            "character varying(40)",)
        assert conn.execute("SELECT column_default, is_nullable FROM information_schema.columns"
                            " WHERE table_name = 'step_library' AND column_name = 'tree_key'").fetchone() == (
            "gen_random_uuid()", "NO")
        assert distribute.layout_statements(conn) == []


def test_distribute_without_stepsync_keeps_the_application_s_keys_and_rows(citus_db):
    # The application's own tables, with its own names for the sync columns' keys, and extras, on a coordinator.
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(APPLICATION_TABLES.read_text(encoding="utf-8"))
        conn.execute("ALTER TABLE step_library ADD COLUMN ticket varchar(40), ADD COLUMN source_tree_id uuid,"
                     " ADD COLUMN source_node_id varchar(255), ADD COLUMN is_flow_synced boolean,"
                     " ADD COLUMN last_synced_at timestamptz, ADD COLUMN forked_from_id uuid")
        conn.execute("ALTER TABLE trees ADD COLUMN region varchar(20)")
        conn.execute("ALTER TABLE step_library ADD CONSTRAINT library_flow FOREIGN KEY (source_tree_id)"
                     " REFERENCES trees (id) ON DELETE SET NULL")
        conn.execute("CREATE UNIQUE INDEX library_node ON step_library (source_tree_id, source_node_id)")
        conn.execute("CREATE INDEX library_by_creator ON step_library (created_by)")
        flows = Flows(conn)
        flow = flows.create(procedure("Drain"))
        conn.execute("INSERT INTO step_library (title, step_type, content, usage_count, rating, rating_count,"
                     " source_tree_id, source_node_id, is_flow_synced, ticket) SELECT 'Step ' || g, 'action',"
                     " '{}', g, 3.5, g %% 3, %s, 'n' || g, true, 'T-' || g FROM generate_series(1, 40) AS g", (flow,))
        conn.execute("INSERT INTO step_library (title, step_type, content, usage_count, is_flow_synced)"
                     " SELECT 'Hand ' || g, 'solution', '{}', g, false FROM generate_series(1, 25) AS g")
        # create_distributed_table_concurrently where this coordinator can run it.
        if conn.execute("SELECT current_setting('output_plugin_libraries', true)").fetchone()[0] is not None:
            conn.execute(f"ALTER DATABASE {conn.info.dbname} SET output_plugin_libraries ="
                         " pgoutput, test_decoding, citus")
    with psycopg.connect(citus_db) as conn:
        before = every_row(conn)
        concurrently = distribute.concurrent_refusal(conn) is None

    result = run(citus_db, "distribute")

    assert result.returncode == 0, result.stderr
    assert ("create_distributed_table_concurrently cannot run here" in result.stderr) != concurrently
    with psycopg.connect(citus_db) as conn:
        assert layout(conn) == LAYOUT
        after = every_row(conn)
        assert {t: [{c: r[c] for c in before[t][0]} for r in after[t]] for t in TABLES} == before
        assert all(r["tree_key"] == flow for r in after["step_library"] if r["source_tree_id"] == flow)
        assert conn.execute("SELECT pg_get_indexdef('library_by_creator'::regclass)").fetchone()[0].endswith(
            "USING btree (created_by)")
        assert constraints(conn, "step_library")["step_library_source_key"] == "UNIQUE (tree_key, source_node_id)"
        assert "library_flow" not in constraints(conn, "step_library")
        assert conn.execute("SELECT to_regclass('public.library_node')").fetchone()[0] is None


def test_distribute_with_a_shard_count_lays_both_tables_out_in_that_many_shards(citus_db):
    """`stepsync distribute --shard-count 4`: trees and step_library in 4 shards, co-located, every row kept
    (docs/contract.md §11.2: a library that is searched wants few shards a worker)."""
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(APPLICATION_TABLES.read_text(encoding="utf-8"))
        flows = Flows(conn)
        flow = flows.create(procedure("Drain", "Restart"))
        conn.execute("INSERT INTO step_library (title, step_type, content, usage_count)"
                     " SELECT 'Hand ' || g, 'solution', '{}', g FROM generate_series(1, 25) AS g")
    with psycopg.connect(citus_db) as conn:
        before = every_row(conn)

    result = run(citus_db, "distribute", "--shard-count", "4")

    assert result.returncode == 0, result.stderr
    assert "shard_count => 4" in result.stderr
    with psycopg.connect(citus_db) as conn:
        assert layout(conn) == LAYOUT
        assert conn.execute("SELECT logicalrelid::text, count(*) FROM pg_dist_shard WHERE logicalrelid IN"
                            " ('public.trees'::regclass, 'public.step_library'::regclass) GROUP BY 1 ORDER BY 1"
                            ).fetchall() == [("step_library", 4), ("trees", 4)]
        after = every_row(conn)
        assert {t: [{c: r[c] for c in before[t][0]} for r in after[t]] for t in TABLES if before[t]} == {
            t: rows for t, rows in before.items() if rows}
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (flow,))
        conn.commit()
        assert conn.execute("SELECT title FROM step_library WHERE source_tree_id = %s ORDER BY title",
                            (flow,)).fetchall() == [("Drain",), ("Restart",)]
    refused = run(citus_db, "distribute", "--shard-count", "0")
    assert refused.returncode == 2 and "--shard-count" in refused.stderr


def test_layout_statements_are_exact_and_run_as_they_are(citus_db):
    # The tables as they stand on one node with stepsync's columns and keys, a primary key named otherwise,
    # and an application table that references a step.
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for path in SINGLE_NODE_TABLES:
            conn.execute(path.read_text(encoding="utf-8"))
        conn.execute("ALTER TABLE step_library RENAME CONSTRAINT step_library_pkey TO \"Step Library PK\"")
        conn.execute("CREATE TABLE session_steps (id int PRIMARY KEY, step_id uuid REFERENCES step_library (id))")
        statements = distribute.layout_statements(conn)
        blocking = distribute.concurrent_refusal(conn)
        assert statements == [
            "ALTER TABLE public.step_library ADD COLUMN tree_key uuid;",
            "ALTER TABLE public.step_library ALTER COLUMN tree_key TYPE uuid USING COALESCE(source_tree_id,"
            " gen_random_uuid()), ALTER COLUMN tree_key SET DEFAULT gen_random_uuid(), ALTER COLUMN tree_key"
            " SET NOT NULL;",
            "ALTER TABLE public.session_steps DROP CONSTRAINT session_steps_step_id_fkey;",
            "ALTER TABLE public.step_library DROP CONSTRAINT step_library_forked_from_id_fkey;",
            "ALTER TABLE public.step_library DROP CONSTRAINT step_library_source_tree_id_fkey;",
            "ALTER TABLE public.step_library DROP CONSTRAINT step_library_source_key;",
            'ALTER TABLE public.step_library DROP CONSTRAINT "Step Library PK";',
            'ALTER TABLE public.step_library ADD CONSTRAINT "Step Library PK" PRIMARY KEY (tree_key, id);',
            "ALTER TABLE public.step_library ADD CONSTRAINT step_library_source_key UNIQUE (tree_key,"
            " source_node_id);",
            "SELECT create_reference_table('public.accounts');",
            "SELECT create_reference_table('public.users');",
            f"SELECT create_distributed_table{'' if blocking else '_concurrently'}('public.trees', 'id');",
            f"SELECT create_distributed_table{'' if blocking else '_concurrently'}('public.step_library',"
            " 'tree_key', colocate_with => 'public.trees');"]
        for statement in statements:      # as a user would paste them into psql, one after the other
            conn.execute(statement)
        assert distribute.layout_statements(conn) == []
        assert layout(conn) == LAYOUT


def test_a_row_changed_while_the_tables_are_laid_out_stops_it_before_the_install(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(APPLICATION_TABLES.read_text(encoding="utf-8"))
        conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Reboot', 'action', '{}')")
    said: list[str] = []

    def say(line: str) -> None:   # an application's write between two of the statements
        said.append(line)
        if line.startswith("running: SELECT create_distributed_table"):
            with psycopg.connect(citus_db, autocommit=True) as other:
                other.execute("UPDATE step_library SET usage_count = usage_count + 1")

    with pytest.raises(StepsyncError) as stopped:
        distribute.lay_out(citus_db, say=say, warn=said.append)
    assert str(stopped.value).startswith("the rows changed while the tables were laid out (step_library: 1 rows"
                                         " (checksum ")
    assert str(stopped.value).endswith(": stepsync was not installed; if the application wrote to them"
                                       " meanwhile, run stepsync distribute again, otherwise compare them with"
                                       " a backup")
    with psycopg.connect(citus_db) as conn:
        assert layout(conn) == LAYOUT
        assert conn.execute("SELECT to_regnamespace('stepsync')").fetchone() == (None,)
    assert not [line for line in said if line.startswith("running: SELECT truncate_local_data")]


def test_laid_out_tables_get_nothing(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
        assert distribute.layout_statements(conn) == []
    before = catalog(citus_db)
    result = run(citus_db, "distribute")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("the tables are laid out as docs/contract.md §11.1 already; installed stepsync")
    assert "running:" not in result.stderr
    again = run(citus_db, "distribute")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("the tables are laid out as docs/contract.md §11.1 already; stepsync is up to"
                                   " date"), again.stdout
    # The application's tables as they were; stepsync's own (the search's anchors, docs/contract.md §11.3) new.
    assert [r for r in catalog(citus_db) if r[0] == "citus" and not r[1].startswith("stepsync.")] == [
        r for r in before if r[0] == "citus"]
    assert [r for r in catalog(citus_db) if r[0] == "citus" and r[1].startswith("stepsync.")] == [
        ("citus", "stepsync.search_anchors", "h")]


def test_a_database_without_citus_is_refused_in_one_line_and_changes_nothing(fresh_db):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(APPLICATION_TABLES.read_text(encoding="utf-8"))
    before = catalog(fresh_db)
    result = run(fresh_db, "distribute")
    assert result.returncode == 1
    name = urlsplit(fresh_db).path.lstrip("/")
    assert result.stderr == (f"stepsync: error: database {name}: has no citus extension: stepsync distribute lays"
                             " out the tables of a Citus coordinator (docs/contract.md §11.1); on one PostgreSQL"
                             " server run stepsync install\n")
    assert result.stdout == ""
    assert catalog(fresh_db) == before


def test_a_worker_is_refused_in_one_line_by_distribute_and_migrate(citus_db):
    name = urlsplit(citus_db).path.lstrip("/")
    worker = url_for(name, port=workers()[0][1])
    before = catalog(worker)
    for command in ("distribute", "migrate"):
        result = run(worker, command)
        assert result.returncode == 1
        assert result.stderr.startswith(f"stepsync: error: database {name}: is not the coordinator of a Citus"
                                        " cluster (citus "), result.stderr
        assert result.stderr.endswith(f"): run stepsync {command} on the coordinator, once its workers are added"
                                      " (citus_add_node)\n")
        assert len(result.stderr.splitlines()) == 1
    assert catalog(worker) == before


def test_what_citus_would_refuse_is_listed_and_nothing_is_changed(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(APPLICATION_TABLES.read_text(encoding="utf-8"))
        conn.execute("CREATE UNIQUE INDEX library_title ON step_library (title)")
        conn.execute("CREATE TABLE sessions (id int PRIMARY KEY, tree_id uuid REFERENCES trees (id))")
        conn.execute("CREATE FUNCTION public.step_label(s step_library) RETURNS text LANGUAGE sql"
                     " AS $$ SELECT s.title $$")
        conn.execute("CREATE FUNCTION public.account_label(a accounts) RETURNS text LANGUAGE sql"
                     " AS $$ SELECT a.name $$")   # kept: accounts becomes a reference table in place
    before = catalog(citus_db)
    result = run(citus_db, "distribute")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "stepsync: foreign key sessions_tree_id_fkey on public.sessions: references trees (id), and Citus refuses"
        " it once trees and step_library are distributed (a key between distributed tables must be on their"
        " distribution columns; other tables may reference reference tables only): drop it, or make the other"
        " table a reference table, first",
        "stepsync: unique index public.library_title on public.step_library: does not include tree_key, the"
        " distribution column docs/contract.md §11.1 gives the table, and Citus refuses such a key (0A000): drop"
        " it, or add tree_key to it, first",
        "stepsync: function step_label(step_library): uses the row type of step_library, which Citus cannot"
        " keep while it takes the tables over (it re-points it to a shard's row type and drops it with that"
        " shard, or fails): drop it, run stepsync distribute, then create it again",
        "stepsync: error: 3 problem(s) stop the tables from being laid out as docs/contract.md §11.1; nothing was"
        " changed"]
    assert catalog(citus_db) == before


def test_migrate_on_a_coordinator_creates_the_tables_laid_out_and_installs(citus_db):
    result = run(citus_db, "migrate")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.stdout.startswith("migrated ")
    assert "laid out the tables as docs/contract.md §11.1" in result.stdout
    assert "installed stepsync revision" in result.stdout
    with psycopg.connect(citus_db) as conn:
        assert layout(conn) == LAYOUT
        assert constraints(conn, "step_library")["step_library_pkey"] == "PRIMARY KEY (tree_key, id)"
        assert constraints(conn, "step_library")["step_library_source_key"] == "UNIQUE (tree_key, source_node_id)"
        flows = Flows(conn)
        conn.commit()
        flow = flows.create(procedure("Drain", "Restart"))
        flows.publish(flow)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM step_library WHERE tree_key = %s AND is_flow_synced",
                            (flow,)).fetchone() == (2,)
    again = run(citus_db, "migrate")
    assert again.returncode == 0, again.stderr
    assert "the tables are laid out as docs/contract.md §11.1 already; stepsync is up to date" in again.stdout
