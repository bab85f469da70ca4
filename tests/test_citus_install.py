"""`stepsync install` and the script of `stepsync sql` on a Citus coordinator (docs/contract.md §11.2):
on tables laid out as §11.1 says they install the distributed variant; on tables laid out otherwise
they refuse, changing nothing, and say how the tables are and how §11.1 lays them out (the install
also prints the statements that would do it: `stepsync distribute`, tests/test_citus_distribute.py).
The behaviour after the install is tests/test_citus_product.py's.

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

from stepsync import history
from test_citus_product import drop_database  # retries while the coordinator's connections close

HEAD = history.head_revision()   # the newest revision, which an install brings

DSN_ENV = "STEPSYNC_CITUS_DSN"
DSN = os.environ.get(DSN_ENV)

pytestmark = pytest.mark.skipif(
    not DSN, reason=f"{DSN_ENV} is not set: these tests need an existing Citus cluster (docs/scaling.md §2.0)")

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
            drop_database(admin, name, [port for _, port in workers])


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


PSQL = Path("/usr/lib/postgresql/15/bin/psql")


def publish_one(url: str) -> list[tuple]:
    """Publish one flow of two steps as a client would; the library rows it yields."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO public.users (id, account_id, email) VALUES"
                     " ('00000000-0000-0000-0000-0000000000b1', NULL, 'b@example.com')")
        conn.execute("""INSERT INTO public.trees (id, name, tree_type, tree_structure, author_id) VALUES
            ('00000000-0000-0000-0000-00000000f001', 'flow', 'procedural',
             '{"steps": [{"id": "s1", "type": "procedure_step", "title": "One"},
                         {"id": "s2", "type": "procedure_step", "title": "Two"}]}',
             '00000000-0000-0000-0000-0000000000b1')""")
        conn.execute("UPDATE public.trees SET status = 'published'")
        return conn.execute("SELECT tree_key::text, source_tree_id::text, source_node_id, title, is_active"
                            " FROM public.step_library ORDER BY source_node_id").fetchall()


PUBLISHED = [("00000000-0000-0000-0000-00000000f001", "00000000-0000-0000-0000-00000000f001", "s1", "One", True),
             ("00000000-0000-0000-0000-00000000f001", "00000000-0000-0000-0000-00000000f001", "s2", "Two", True)]


def test_install_on_local_tables_of_a_coordinator_is_refused_and_changes_nothing(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for name in ("accounts", "users", "trees", "step_library"):
            conn.execute((TABLES_DIR / f"{name}.sql").read_text(encoding="utf-8"))
    before = catalog(citus_db)
    result = run(citus_db, "install")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:4] == [
        "stepsync: table public.accounts: is a local table; docs/contract.md §11.1 lays it out as a reference table",
        "stepsync: table public.step_library: is a local table; docs/contract.md §11.1 lays it out as distributed"
        " by tree_key, co-located with trees",
        "stepsync: table public.trees: is a local table; docs/contract.md §11.1 lays it out as distributed by id",
        "stepsync: table public.users: is a local table; docs/contract.md §11.1 lays it out as a reference table"]
    assert lines[4].startswith("stepsync: to lay them out: run `stepsync distribute`, or these statements: ")
    assert "SELECT create_reference_table('public.accounts');" in lines[4]
    assert lines[5] == "stepsync: error: 5 problem(s) found; nothing was changed"
    assert len(lines) == 6
    assert catalog(citus_db) == before


def test_install_on_the_laid_out_tables_installs_the_distributed_variant(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
    result = run(citus_db, "install")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (f"installed stepsync revision {HEAD} (the distributed variant, on Citus);"
                                     " backfill: 0 flows in step, 0 library rows written or retired, 0 skipped")
    with psycopg.connect(citus_db, autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM public.stepsync_version").fetchall() == [(HEAD,)]
        assert conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                            " WHERE conname = 'step_library_source_key'").fetchall() == [
            ("UNIQUE (tree_key, source_node_id)",)]
        assert conn.execute("SELECT conname FROM pg_constraint WHERE conrelid = 'public.step_library'::regclass"
                            " AND contype = 'f' ORDER BY 1").fetchall() == []
    assert publish_one(citus_db) == PUBLISHED
    again = run(citus_db, "install")
    assert (again.returncode, again.stdout.strip()) == (
        0, f"stepsync is up to date (revision {HEAD}, distributed on Citus); nothing to do")
    doctor = run(citus_db, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.strip().splitlines()[-1].startswith("no findings")


def test_row_security_is_refused_on_citus_and_changes_nothing(citus_db):
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
    before = catalog(citus_db)
    result = run(citus_db, "install", "--row-security", "auth.uid()")
    assert result.returncode == 1
    assert result.stderr.strip() == ("stepsync: error: row-level security (--row-security, --no-row-security) is not"
                                     " available on Citus in this version (docs/contract.md §11)")
    assert catalog(citus_db) == before


def test_the_sql_script_refuses_on_a_coordinator_not_laid_out_and_changes_nothing(citus_db):
    if not PSQL.exists():
        pytest.skip(f"no psql at {PSQL}")
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for name in ("accounts", "users", "trees", "step_library"):
            conn.execute((TABLES_DIR / f"{name}.sql").read_text(encoding="utf-8"))
    before = catalog(citus_db)
    script = subprocess.run([sys.executable, "-m", "stepsync.cli", "sql"], capture_output=True, text=True,
                            check=True).stdout
    applied = subprocess.run([str(PSQL), "-X", "-q", "-d", citus_db], input=script, capture_output=True, text=True,
                             timeout=300)
    assert applied.returncode == 3, applied.stderr
    assert "ERROR:  stepsync cannot be installed into this database" in applied.stderr
    assert ("table public.trees: is a local table; docs/contract.md §11.1 lays it out as distributed by id"
            in applied.stderr)
    assert catalog(citus_db) == before


def test_the_sql_script_installs_the_distributed_variant_on_laid_out_tables(citus_db):
    if not PSQL.exists():
        pytest.skip(f"no psql at {PSQL}")
    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
    script = subprocess.run([sys.executable, "-m", "stepsync.cli", "sql"], capture_output=True, text=True,
                            check=True).stdout
    applied = subprocess.run([str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", citus_db], input=script,
                             capture_output=True, text=True, timeout=300)
    assert applied.returncode == 0, applied.stderr
    assert publish_one(citus_db) == PUBLISHED
    status = run(citus_db, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"distributed_variant": true' in status.stdout
    assert f'"revision": "{HEAD}"' in status.stdout


def test_a_non_superuser_owner_installs_and_runs_it(citus_db):
    """The tables' owner without superuser (docs/contract.md §11.2): the preflight (Citus's metadata and the
    workers' settings), the install, a publish, resync, doctor, check and uninstall, all as that role."""
    role = f"stepsync_ci_owner_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")   # Citus creates it on the workers too
        conn.execute(f"GRANT CREATE ON DATABASE {urlsplit(citus_db).path.lstrip('/')} TO {role}")
        conn.execute(f"GRANT ALL ON SCHEMA public TO {role}")
    owner_url = citus_db.replace("://postgres@", f"://{role}@", 1)
    assert owner_url != citus_db, "the test needs STEPSYNC_CITUS_DSN's user to be postgres@"
    try:
        with psycopg.connect(owner_url, autocommit=True) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
            for statement in LAID_OUT:
                conn.execute(statement)
        installed = run(owner_url, "install")
        assert installed.returncode == 0, installed.stderr
        assert installed.stdout.startswith(f"installed stepsync revision {HEAD} (the distributed variant")
        assert publish_one(owner_url) == PUBLISHED
        resynced = run(owner_url, "resync", "--all")
        assert (resynced.returncode, resynced.stdout.strip()) == (0, "resynced 1 flows: 0 library rows written or"
                                                                     " retired")
        for command in ("doctor", "check"):
            result = run(owner_url, command)
            assert result.returncode == 0, (command, result.stdout, result.stderr)
        removed = run(owner_url, "uninstall")
        assert removed.returncode == 0, removed.stderr
        with psycopg.connect(owner_url) as conn:
            assert conn.execute("SELECT count(*) FROM public.step_library").fetchone() == (2,)
            assert conn.execute("SELECT to_regnamespace('stepsync'), to_regnamespace('stepsync_citus')"
                                ).fetchone() == (None, None)
    finally:
        with psycopg.connect(citus_db, autocommit=True) as conn:
            conn.execute(f"REASSIGN OWNED BY {role} TO postgres")
            conn.execute(f"DROP OWNED BY {role}")   # its privileges too, the database's included
            conn.execute(f"DROP ROLE {role}")


FROZEN_DIR = Path(__file__).resolve().parents[1] / "db" / "migrations" / "sql"


SEARCH_ONE_OR_TWO = ("SELECT source_node_id, rank, complete"
                     " FROM stepsync.search_steps('00000000-0000-0000-0000-0000000000b1', 'one or two') ORDER BY 1")


def test_an_install_of_the_previous_revision_is_upgraded_in_place(citus_db):
    """A coordinator that runs stepsync_0007's distributed variant (search walked the distributed table from
    the coordinator: no stepsync.search_anchors, no stepsync._search_walk): `stepsync install` upgrades it to
    the newest, keeping the library; search then gives the same rows, walked on the workers, and the sync
    writes as before."""
    from stepsync import history

    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
    assert run(citus_db, "install").returncode == 0
    with psycopg.connect(citus_db, autocommit=True) as conn:   # back to what stepsync_0007 installed
        conn.execute("SET citus.multi_shard_modify_mode TO 'sequential'")
        conn.execute("DROP TABLE stepsync.search_anchors")
        conn.execute("DROP TYPE IF EXISTS stepsync.search_found, stepsync.search_gathered, stepsync.search_row,"
                     " stepsync.search_walk,"
                     " stepsync.search_request CASCADE")
        conn.execute("DROP FUNCTION stepsync._search_anchors(), stepsync._search_anchor(integer),"
                     " stepsync._prepared(text, text), stepsync._search_anchors_fill()")
        conn.execute("DROP FUNCTION IF EXISTS stepsync._search_ranked(uuid, text, text, text, uuid, integer)")
        conn.execute((FROZEN_DIR / "stepsync_0006" / "_search_ranked.sql").read_text(encoding="utf-8"))
        conn.execute((FROZEN_DIR / "stepsync_0006" / "citus" / "search_steps.sql").read_text(encoding="utf-8"))
        conn.execute("UPDATE public.stepsync_version SET version_num = 'stepsync_0007'")
        conn.execute(history.schema_comment_sql("stepsync_0007"))
    assert publish_one(citus_db) == PUBLISHED   # the old variant syncs
    with psycopg.connect(citus_db, autocommit=True) as conn:
        before = conn.execute(SEARCH_ONE_OR_TWO).fetchall()
    assert [r[0] for r in before] == ["s1", "s2"]
    upgraded = run(citus_db, "install")
    assert (upgraded.returncode, upgraded.stdout.strip()) == (
        0, f"upgraded stepsync from stepsync_0007 to {HEAD} (the distributed variant, on Citus);"
           " backfill: 1 flows in step, 0 library rows written or retired, 0 skipped")
    with psycopg.connect(citus_db, autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM public.stepsync_version").fetchall() == [(HEAD,)]
        assert conn.execute("SELECT count(*) FROM stepsync.search_anchors").fetchone() == (4096,)
        assert conn.execute(SEARCH_ONE_OR_TWO).fetchall() == before
        ports = [port for (port,) in conn.execute("SELECT nodeport FROM pg_dist_node WHERE groupid <> 0")]
    for url in (citus_db, *(url_for(urlsplit(citus_db).path.lstrip("/"), port=port) for port in ports)):
        with psycopg.connect(url) as node:   # the coordinator and every worker have the new search
            assert node.execute("SELECT to_regprocedure('stepsync._search_local(uuid, stepsync.search_request,"
                                " integer)') IS NOT NULL").fetchone() == (True,)
    with psycopg.connect(citus_db, autocommit=True) as conn:
        conn.execute("""UPDATE public.trees SET tree_structure = '{"steps": [{"id": "s1", "type": "procedure_step",
                        "title": "One again"}]}'""")
        assert conn.execute("SELECT source_node_id, title, is_active FROM public.step_library"
                            " ORDER BY source_node_id").fetchall() == [("s1", "One again", True), ("s2", "Two", False)]
    doctor = run(citus_db, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.strip().splitlines()[-1].startswith("no findings")


# The search's files of stepsync_0008, types first (its revision file and citus/ folder).
# The search's files as a coordinator had them at each revision, in the order they install.
STEPSYNC_0008_SEARCH = ("search_request.sql", "search_walk.sql", "search_row.sql", "_prepared.sql",
                        "_search_anchors.sql", "_search_fetch.sql", "_search_walk.sql", "_search_gather.sql",
                        "_search_local.sql", "_search_rows.sql", "_search_ranked.sql", "_search_statistics.sql",
                        "refresh_search_statistics.sql", "search_steps.sql")
# stepsync_0009: the rows read with the walk (search_found); the statistics read from pg_stats.
STEPSYNC_0009_SEARCH = ("search_request.sql", "search_walk.sql", "search_row.sql", "search_found.sql",
                        "_prepared.sql", "_search_anchors.sql", "_search_fetch.sql", "_search_walk.sql",
                        "_search_gather.sql", "_search_local.sql", "_search_rows.sql", "_search_ranked.sql",
                        "_search_statistics.sql", "refresh_search_statistics.sql", "search_steps.sql")
# stepsync_0010: the rows as text (search_gathered); the statistics kept (search_sample_size's columns).
STEPSYNC_0010_SEARCH = ("search_request.sql", "search_walk.sql", "search_row.sql", "search_gathered.sql",
                        "search_sample.sql", "_prepared.sql", "_search_anchors.sql", "_search_fetch.sql",
                        "_search_walk.sql", "_search_gather.sql", "_search_local.sql", "_search_rows.sql",
                        "_search_ranked.sql", "_search_statistics.sql", "_search_statistics_keep.sql",
                        "refresh_search_statistics.sql", "search_steps.sql")
# stepsync_0011: the rows a worker reads from stepsync._search_read; the anchors kept.
STEPSYNC_0011_SEARCH = ("search_request.sql", "search_walk.sql", "search_row.sql", "search_gathered.sql",
                        "search_sample.sql", "_prepared.sql", "_search_anchors.sql", "_search_fetch.sql",
                        "_search_walk.sql", "_search_gather.sql", "_search_read.sql", "_search_local.sql",
                        "_search_rows.sql", "_search_ranked.sql", "_search_statistics.sql",
                        "_search_statistics_keep.sql", "refresh_search_statistics.sql", "search_steps.sql")
# What the newest revision has and these had not (dropped before their files go back).
NEWER_SEARCH = ("DROP FUNCTION IF EXISTS stepsync._search_statistics_keep()",
                "DROP FUNCTION IF EXISTS stepsync._search_row_sql(text, text)",
                "DROP FUNCTION IF EXISTS stepsync._search_read(uuid[], uuid[], boolean)",
                "ALTER TABLE stepsync.search_sample_size DROP COLUMN IF EXISTS most_common_elems,"
                " DROP COLUMN IF EXISTS most_common_elem_freqs, DROP COLUMN IF EXISTS anchors")


def frozen_as_a_coordinator_had_it(revision: str, name: str) -> Path:
    """NAME as a coordinator had it at REVISION: the newest frozen copy at or before it of its distributed
    variant, else of its one-node copy."""
    for kind in ("citus/", ""):
        copies = sorted(p for p in FROZEN_DIR.glob(f"stepsync_*/{kind}{name}")
                        if (p.parent.parent if kind else p.parent).name <= revision)
        if copies:
            return copies[-1]
    raise FileNotFoundError(f"{name} at {revision}")


@pytest.mark.parametrize("revision, files", [("stepsync_0008", STEPSYNC_0008_SEARCH),
                                             ("stepsync_0009", STEPSYNC_0009_SEARCH),
                                             ("stepsync_0010", STEPSYNC_0010_SEARCH),
                                             ("stepsync_0011", STEPSYNC_0011_SEARCH)])
def test_an_install_of_a_revision_with_the_search_walk_is_upgraded_in_place(citus_db, revision, files):
    """A coordinator that runs stepsync_0008 (its search files: the walk on the workers, a search going
    to the workers twice, the walk then the rows) or stepsync_0009 (one round, the rows as row values, the
    statistics from pg_stats) or stepsync_0010 (the rows as text, the statistics kept, the anchors found at
    every search) or stepsync_0011 (the anchors kept and checked before every search, the rows read after the
    walk): `stepsync install` upgrades it to the newest revision (stepsync.search_walk gains its attributes in
    place), the old signatures go, search gives the same rows, the sample's statistics and the anchors are
    kept where a search reads them, and doctor finds nothing."""
    from stepsync import history

    with psycopg.connect(citus_db, autocommit=True) as conn:
        for statement in LAID_OUT:
            conn.execute(statement)
    assert run(citus_db, "install").returncode == 0
    assert publish_one(citus_db) == PUBLISHED
    with psycopg.connect(citus_db, autocommit=True) as conn:
        expected = conn.execute(SEARCH_ONE_OR_TWO).fetchall()
        # Words for the sample's statistics: 300 hand-made steps, "two" in every third.
        conn.execute("INSERT INTO public.step_library (title, step_type, content, visibility)"
                     " SELECT CASE WHEN i % 3 = 0 THEN 'Step two ' ELSE 'Step ' END || i, 'action',"
                     " jsonb_build_object('instructions', 'check the gauge'), 'private'"
                     " FROM generate_series(1, 300) AS i")
        conn.execute("SELECT stepsync.refresh_search_statistics()")
        kept = conn.execute("SELECT most_common_elems, most_common_elem_freqs FROM stepsync.search_sample_size"
                            ).fetchone()
        assert kept == conn.execute(
            "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats WHERE schemaname ="
            " 'stepsync' AND tablename = 'search_sample' AND attname = 'search_vector'").fetchone()
        assert "two" in kept[0]
    with psycopg.connect(citus_db, autocommit=True) as conn:   # back to what the revision installed
        conn.execute("SET citus.multi_shard_modify_mode TO 'sequential'")
        conn.execute("DROP TYPE IF EXISTS stepsync.search_found, stepsync.search_gathered, stepsync.search_row,"
                     " stepsync.search_walk,"
                     " stepsync.search_request CASCADE")   # and with them the search's functions
        conn.execute("DROP FUNCTION IF EXISTS stepsync._search_ranked(uuid, text, text, text, uuid, integer)")
        conn.execute("DROP FUNCTION IF EXISTS stepsync._search_gather(stepsync.search_request, uuid[], integer)")
        for statement in NEWER_SEARCH:
            conn.execute(statement)
        for name in files:
            conn.execute(frozen_as_a_coordinator_had_it(revision, name).read_text(encoding="utf-8"))
        conn.execute("UPDATE public.stepsync_version SET version_num = %s", (revision,))
        conn.execute(history.schema_comment_sql(revision))
        before = conn.execute(SEARCH_ONE_OR_TWO).fetchall()
    assert before == expected
    assert [r[0] for r in before] == ["s1", "s2"]
    head = history.head_revision()
    upgraded = run(citus_db, "install")
    assert (upgraded.returncode, upgraded.stdout.strip()) == (
        0, f"upgraded stepsync from {revision} to {head} (the distributed variant, on Citus);"
           " backfill: 1 flows in step, 0 library rows written or retired, 0 skipped")
    with psycopg.connect(citus_db, autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM public.stepsync_version").fetchall() == [(head,)]
        assert conn.execute(SEARCH_ONE_OR_TWO).fetchall() == before
        assert conn.execute("SELECT most_common_elems, most_common_elem_freqs FROM stepsync.search_sample_size"
                            ).fetchone() == kept
        anchors = conn.execute("SELECT anchors FROM stepsync.search_sample_size").fetchone()[0]
        assert len(anchors) == 2 and conn.execute("SELECT stepsync._search_anchors()").fetchone() == (anchors,)
        assert conn.execute("SELECT prosecdef FROM pg_proc WHERE oid = 'stepsync._search_anchors()'::regprocedure"
                            ).fetchone() == (True,)
        ports = [port for (port,) in conn.execute("SELECT nodeport FROM pg_dist_node WHERE groupid <> 0")]
    for url in (citus_db, *(url_for(urlsplit(citus_db).path.lstrip("/"), port=port) for port in ports)):
        with psycopg.connect(url) as node:   # on every node: the new signatures and results, and not the old
            assert node.execute(
                "SELECT to_regprocedure('stepsync._search_local(uuid, stepsync.search_request, integer)') IS NOT NULL,"
                " to_regprocedure('stepsync._search_gather(stepsync.search_request, uuid[], integer)') IS NOT NULL,"
                " to_regprocedure('stepsync._search_local(uuid, stepsync.search_request)') IS NULL,"
                " to_regprocedure('stepsync._search_gather(stepsync.search_request)') IS NULL,"
                " to_regtype('stepsync.search_found') IS NULL, to_regtype('stepsync.search_gathered') IS NOT NULL"
                ).fetchone() == (True, True, True, True, True, True)
            assert node.execute(   # stepsync_0012: the walk reads a rare word's rows, and says where it walked
                "SELECT to_regprocedure('stepsync._search_walk(regclass[], stepsync.search_request, boolean, integer,"
                " regclass[])') IS NOT NULL,"
                " to_regprocedure('stepsync._search_walk(regclass[], stepsync.search_request, boolean)') IS NULL,"
                " pg_get_function_result('stepsync._search_walk(regclass[], stepsync.search_request, boolean,"
                " integer, regclass[])'::regprocedure),"
                " to_regprocedure('stepsync._search_fetch(text, boolean, stepsync.search_request, tsquery, integer,"
                " boolean, integer)') IS NULL,"
                " to_regprocedure('stepsync._search_row_sql(text, text)') IS NOT NULL,"
                " (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute AS a JOIN pg_type AS t"
                "   ON a.attrelid = t.typrelid WHERE t.oid = 'stepsync.search_walk'::regtype AND a.attnum > 0"
                "   AND NOT a.attisdropped)").fetchone() == (
                    True, True, "stepsync.search_gathered", True, True,
                    ["ids", "tree_keys", "tiers", "usage_counts", "ratings", "classes", "done", "all_matches",
                     "sampled", "node_group", "shards"])
            assert node.execute(
                "SELECT pg_get_function_result('stepsync._search_local(uuid, stepsync.search_request, integer)'"
                "::regprocedure)").fetchone() == (
                    "TABLE(walk stepsync.search_walk, found_id uuid, found_row text)",)
    doctor = run(citus_db, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.strip().splitlines()[-1].startswith("no findings")
