"""stepsync on a Citus database (docs/contract.md §11), as this version has it: refused up front,
changing nothing, by `stepsync install`, `stepsync migrate` and the script of `stepsync sql`.

The distributed variant (§11.2) is not in this version; before this refusal an install on a
coordinator stopped part-way (0A000 on the ON DELETE SET NULL key, the version table left at
stepsync_0001) or created local objects that then stopped the tables from being distributed (2BP01).

CI cannot run Citus (no reachable package registry ships it): these tests run only when
STEPSYNC_CITUS_DSN names a superuser URL of the coordinator of an existing cluster, and are skipped
without it. Each test gets a fresh database on every node (created through the coordinator with
citus.enable_create_database_propagation, the citus extension in it on every node, the workers
added), dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

DSN_ENV = "STEPSYNC_CITUS_DSN"
DSN = os.environ.get(DSN_ENV)

pytestmark = pytest.mark.skipif(
    not DSN, reason=f"{DSN_ENV} is not set: these tests need an existing Citus cluster (docs/scaling.md §2.6)")

TABLES_DIR = Path(__file__).resolve().parents[1] / "db" / "tables"

# The application's tables as docs/contract.md §11.1 lays them out (reduced to the keys that matter).
LAID_OUT = [
    "CREATE TABLE public.accounts (id uuid PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE public.users (id uuid PRIMARY KEY, account_id uuid REFERENCES public.accounts (id), email text)",
    """CREATE TABLE public.trees (id uuid PRIMARY KEY, name text NOT NULL, tree_type text NOT NULL,
           tree_structure jsonb NOT NULL DEFAULT '{}', status text NOT NULL DEFAULT 'draft',
           is_active boolean NOT NULL DEFAULT true, is_public boolean NOT NULL DEFAULT false, account_id uuid,
           author_id uuid NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE public.step_library (tree_key uuid NOT NULL DEFAULT gen_random_uuid(),
           id uuid NOT NULL DEFAULT gen_random_uuid(), title text NOT NULL, step_type text NOT NULL,
           content jsonb NOT NULL, visibility text NOT NULL DEFAULT 'private', created_by uuid, account_id uuid,
           usage_count integer NOT NULL DEFAULT 0, rating numeric(3,2), rating_count integer NOT NULL DEFAULT 0,
           is_active boolean NOT NULL DEFAULT true, created_at timestamptz NOT NULL DEFAULT now(),
           updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tree_key, id))""",
    "SELECT create_reference_table('public.accounts')",
    "SELECT create_reference_table('public.users')",
    "SELECT create_distributed_table('public.trees', 'id')",
    "SELECT create_distributed_table('public.step_library', 'tree_key', colocate_with => 'public.trees')",
]


def url_for(dbname: str, *, port: int | None = None) -> str:
    """STEPSYNC_CITUS_DSN (a postgresql:// URL) with another database, and another port for a worker."""
    parts = urlsplit(DSN or "")
    netloc = parts.netloc if port is None else f"{parts.netloc.rsplit(':', 1)[0]}:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{dbname}", parts.query, parts.fragment))


@pytest.fixture
def citus_db() -> Iterator[str]:
    """A fresh database with the citus extension on every node of the cluster; its coordinator's URL."""
    name = f"stepsync_citus_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        workers = admin.execute("SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary'"
                                " AND groupid <> 0 ORDER BY nodeport").fetchall()
        coordinator = admin.execute("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid = 0").fetchone()
        admin.execute("SET citus.enable_create_database_propagation = on")
        admin.execute(f"CREATE DATABASE {name}")
        try:
            for _, port in workers:
                with psycopg.connect(url_for(name, port=port), autocommit=True) as worker:
                    worker.execute("CREATE EXTENSION citus")
            with psycopg.connect(url_for(name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
                if coordinator is not None:
                    conn.execute("SELECT citus_set_coordinator_host(%s, %s)", coordinator)
                for host, port in workers:
                    conn.execute("SELECT citus_add_node(%s, %s)", (host, port))
            yield url_for(name)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = [sys.executable, "-m", "stepsync.cli", "--database-url", url, *args]
    env = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
    result = subprocess.run(exe, env=env, capture_output=True, text=True, timeout=300, input=stdin)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def catalog(url: str) -> list[tuple]:
    """Every relation, function, trigger and policy outside the system schemas: what an install would add."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT 'relation', n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c"
            "  JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'citus', 'citus_internal',"
            "                         'columnar', 'columnar_internal')"
            "   AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'"
            " UNION ALL SELECT 'schema', nspname, '' FROM pg_namespace WHERE nspname = 'stepsync'"
            " UNION ALL SELECT 'trigger', tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
            " UNION ALL SELECT 'policy', polname, polrelid::regclass::text FROM pg_policy"
            " ORDER BY 1, 2, 3").fetchall()


def refusal(url: str) -> str:
    return f"stepsync: database {urlsplit(url).path.lstrip('/')}: this is a Citus database (citus "


def test_install_on_local_tables_of_a_coordinator_is_refused_and_changes_nothing(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for name in ("accounts", "users", "trees", "step_library"):
            conn.execute((TABLES_DIR / f"{name}.sql").read_text(encoding="utf-8"))
    before = catalog(citus_db)
    result = run(citus_db, "install")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(refusal(citus_db)) and "install stepsync on a database without Citus" in lines[0]
    assert lines[1:5] == [
        "stepsync: table public.accounts: is a local table; docs/contract.md §11.1 lays it out as a reference table",
        "stepsync: table public.users: is a local table; docs/contract.md §11.1 lays it out as a reference table",
        "stepsync: table public.trees: is a local table; docs/contract.md §11.1 lays it out as distributed by id",
        "stepsync: table public.step_library: is a local table; docs/contract.md §11.1 lays it out as distributed"
        " by tree_key, co-located with trees"]
    assert lines[5] == "stepsync: error: 5 problem(s) found; nothing was changed"
    assert catalog(citus_db) == before


def test_install_on_the_laid_out_tables_is_refused_and_changes_nothing(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
        group = conn.execute("SELECT colocation_id FROM citus_tables WHERE table_name = 'public.trees'::regclass"
                             ).fetchone()[0]
    before = catalog(citus_db)
    result = run(citus_db, "install")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(refusal(citus_db))
    assert lines[1:5] == [
        "stepsync: table public.accounts: is a reference table; docs/contract.md §11.1 lays it out as a reference"
        " table",
        "stepsync: table public.users: is a reference table; docs/contract.md §11.1 lays it out as a reference table",
        f"stepsync: table public.trees: is distributed by id (co-location group {group}); docs/contract.md §11.1"
        " lays it out as distributed by id",
        f"stepsync: table public.step_library: is distributed by tree_key (co-location group {group});"
        " docs/contract.md §11.1 lays it out as distributed by tree_key, co-located with trees"]
    assert catalog(citus_db) == before


def test_migrate_on_a_coordinator_is_refused_and_creates_nothing(citus_db):
    before = catalog(citus_db)
    result = run(citus_db, "migrate")
    assert result.returncode == 1
    assert result.stderr.startswith(refusal(citus_db).replace("stepsync: ", "stepsync: error: ", 1)), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert catalog(citus_db) == before


def test_the_sql_script_refuses_on_a_coordinator_and_changes_nothing(citus_db, tmp_path):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
    before = catalog(citus_db)
    script = subprocess.run([sys.executable, "-m", "stepsync.cli", "sql"], capture_output=True, text=True,
                            check=True).stdout
    with psycopg.connect(citus_db, autocommit=True) as conn:
        statements = script.split("\\set ON_ERROR_STOP on\n", 1)[1]
        guard = statements.split("$stepsync$;\n", 1)[0] + "$stepsync$;"
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as refused:
            conn.execute(guard)
    assert refused.value.diag.message_primary == "stepsync cannot be installed into this database"
    assert "this is a Citus database (citus " in (refused.value.diag.message_detail or "")
    assert catalog(citus_db) == before
