"""Migrations: upgrade/downgrade round trips, revision by revision, and the alembic CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory

from catalog import schema_snapshot
from repo import REPO_ROOT
from stepsync import database


def revisions() -> list[str]:
    """Revision ids from base to head."""
    script = ScriptDirectory.from_config(database.alembic_config("postgresql://unused/x"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def snapshot(db) -> dict[str, str]:
    with db.connect() as conn:
        return schema_snapshot(conn)


def leftovers(db) -> list[tuple]:
    """Anything of ours left in the database: relations, functions, types, schemas."""
    return db.rows(
        """
        SELECT 'relation', relname FROM pg_class
         WHERE relnamespace = 'public'::regnamespace
           AND relname NOT IN ('stepsync_version', 'stepsync_version_pkc')
        UNION ALL
        SELECT 'function', proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'schema', nspname FROM pg_namespace WHERE nspname = 'stepsync'
        UNION ALL
        SELECT 'type', typname FROM pg_type
         WHERE typnamespace = 'public'::regnamespace AND typname NOT IN ('stepsync_version', '_stepsync_version')
        ORDER BY 1, 2
        """
    )


def test_revision_chain_is_linear_namespaced_and_labelled():
    script = ScriptDirectory.from_config(database.alembic_config(None))
    revs = revisions()
    assert revs[0] == "stepsync_0001"
    assert all(rev.startswith("stepsync_") for rev in revs), "ids must not collide with an application's"
    assert revs == sorted(revs), "revision ids must sort in upgrade order"
    assert len(set(revs)) == len(revs)
    assert script.get_revision("stepsync_0001").branch_labels == {"stepsync"}
    assert script.get_heads() == [revs[-1]]


def test_round_trip_upgrade_downgrade_upgrade(empty_db):
    database.migrate(empty_db.url)
    at_head = snapshot(empty_db)
    assert {"table public.trees r", "table public.step_library r", "schema stepsync"} <= set(at_head)

    database.downgrade(empty_db.url, "base")
    assert leftovers(empty_db) == []
    assert empty_db.rows("SELECT version_num FROM stepsync_version") == []
    assert empty_db.value("SELECT to_regclass('public.alembic_version')") is None

    database.migrate(empty_db.url)
    assert snapshot(empty_db) == at_head


def test_upgrading_twice_is_a_no_op(empty_db):
    database.migrate(empty_db.url)
    before = snapshot(empty_db)
    versions = empty_db.rows("SELECT xmin::text, version_num FROM stepsync_version")
    database.migrate(empty_db.url)
    assert snapshot(empty_db) == before
    assert empty_db.rows("SELECT xmin::text, version_num FROM stepsync_version") == versions
    assert versions[0][1] == revisions()[-1]


def test_each_revision_goes_up_down_and_up_again(empty_db):
    previous = snapshot(empty_db)
    for rev in revisions():
        database.migrate(empty_db.url, rev)
        after_up = snapshot(empty_db)
        assert after_up != previous, f"revision {rev} changed nothing"
        database.downgrade(empty_db.url, "-1")
        assert snapshot(empty_db) == previous, f"downgrade of {rev} did not restore the schema before it"
        database.migrate(empty_db.url, rev)
        assert snapshot(empty_db) == after_up, f"re-upgrade of {rev} differs from its first upgrade"
        previous = after_up


def test_standalone_library_leaves_room_for_hot_updates(empty_db):
    """stepsync_0003 gives the library it created fillfactor 80, keeps an owner's own, and its downgrade
    takes back only what it set."""
    options = "SELECT reloptions FROM pg_class WHERE oid = 'public.step_library'::regclass"
    database.migrate(empty_db.url, "stepsync_0002")
    assert empty_db.value(options) is None
    database.migrate(empty_db.url)
    assert empty_db.value(options) == ["fillfactor=80"]
    assert empty_db.value("SELECT reloptions FROM pg_class WHERE oid = 'public.trees'::regclass") is None
    database.downgrade(empty_db.url, "stepsync_0002")
    assert empty_db.value(options) is None

    empty_db.conn.execute("ALTER TABLE public.step_library"
                          " SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.05)")
    database.migrate(empty_db.url)
    assert empty_db.value(options) == ["fillfactor=70", "autovacuum_vacuum_scale_factor=0.05"]
    database.downgrade(empty_db.url, "stepsync_0002")
    assert empty_db.value(options) == ["fillfactor=70", "autovacuum_vacuum_scale_factor=0.05"]


def test_first_revision_is_the_pre_feature_schema(empty_db):
    database.migrate(empty_db.url, "stepsync_0001")
    columns = empty_db.rows(
        """
        SELECT table_name, string_agg(column_name, ',' ORDER BY ordinal_position)
          FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'stepsync_version'
         GROUP BY table_name ORDER BY table_name
        """
    )
    assert columns == [
        ("accounts", "id,name,created_at"),
        ("step_library", "id,title,step_type,content,visibility,created_by,account_id,usage_count,"
                         "rating,rating_count,is_active,created_at,updated_at"),
        ("trees", "id,name,description,tree_type,tree_structure,status,is_active,is_public,"
                  "account_id,author_id,created_at,updated_at"),
        ("users", "id,email,display_name,account_id,created_at"),
    ]
    assert empty_db.value("SELECT count(*) FROM pg_namespace WHERE nspname = 'stepsync'") == 0


def test_every_table_and_column_is_commented(db):
    missing = db.rows(
        """
        SELECT c.relname || coalesce('.' || a.attname, '')
          FROM pg_class c
          LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
           AND c.relname <> 'stepsync_version'
           AND (obj_description(c.oid, 'pg_class') IS NULL
                OR (a.attnum IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
         ORDER BY 1
        """
    )
    assert missing == []


def _alembic(env_url: str | None, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STEPSYNC_DATABASE_URL"}
    if env_url is not None:
        env["STEPSYNC_DATABASE_URL"] = env_url
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg"])
def test_alembic_cli_migrates_the_database_in_the_environment(empty_db, scheme):
    url = empty_db.url.replace("postgresql://", f"{scheme}://", 1)
    result = _alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert empty_db.value("SELECT version_num FROM stepsync_version") == revisions()[-1]
    assert empty_db.value("SELECT to_regclass('public.alembic_version')") is None
    result = _alembic(url, "downgrade", "base")
    assert result.returncode == 0, result.stderr
    assert leftovers(empty_db) == []


def test_alembic_cli_without_a_url_says_so():
    result = _alembic(None, "upgrade", "head")
    assert result.returncode != 0
    assert "STEPSYNC_DATABASE_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_alembic_cli_refuses_a_url_of_another_database():
    result = _alembic("mysql://somewhere/db", "upgrade", "head")
    assert result.returncode != 0
    assert "must be a postgresql:// URL" in result.stderr
