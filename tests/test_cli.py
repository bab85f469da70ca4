"""The stepsync command line: one-line errors, migrate, psql."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from repo import REPO_ROOT


def stepsync(*args: str, url: str | None = None, cwd=REPO_ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "STEPSYNC_DATABASE_URL"}
    if url is not None:
        env["STEPSYNC_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "stepsync.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_migrate_with_database_url_option(empty_db):
    result = stepsync("--database-url", empty_db.url.replace("postgresql://", "postgresql+psycopg://"), "migrate")
    assert result.returncode == 0, result.stderr
    assert "migrated" in result.stdout
    assert empty_db.value("SELECT count(*) FROM stepsync_version") == 1


def test_migrate_with_environment_url(empty_db):
    result = stepsync("migrate", url=empty_db.url)
    assert result.returncode == 0, result.stderr
    assert empty_db.value("SELECT to_regclass('public.step_library') IS NOT NULL") is True


def test_psql_runs_on_the_database(db):
    result = stepsync("psql", "--", "-At", "-c", "SELECT count(*) FROM public.trees", url=db.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("mysql://localhost/db", "stepsync: error: not a PostgreSQL URL: 'mysql://localhost/db'"
                                  " (expected postgresql://... or postgresql+psycopg://...)"),
        ("not a url", "stepsync: error: not a PostgreSQL URL: 'not a url'"
                       " (expected postgresql://... or postgresql+psycopg://...)"),
    ],
)
def test_bad_url_is_one_line(url, expected):
    result = stepsync("--database-url", url, "migrate")
    assert result.returncode == 1
    assert result.stderr.strip() == expected


def test_unreachable_server_is_one_line():
    url = f"postgresql://someone:secret@127.0.0.1:{free_port()}/nothing"
    result = stepsync("migrate", url=url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("stepsync: error: cannot connect to postgresql://someone:***@127.0.0.1:")
    assert "secret" not in result.stderr


def test_unknown_database_is_one_line(server):
    result = stepsync("migrate", url=server.url("no_such_database_here"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'database "no_such_database_here" does not exist' in result.stderr


def _flow(db, structure: str, status: str = "draft") -> str:
    author = db.value("INSERT INTO users (email) VALUES (gen_random_uuid() || '@example.com') RETURNING id")
    return str(db.value(
        "INSERT INTO trees (name, tree_type, tree_structure, status, author_id)"
        " VALUES ('CLI flow', 'procedural', %s::jsonb, %s, %s) RETURNING id", (structure, status, author)))


GOOD = '{"steps": [{"id": "a", "type": "procedure_step", "title": "Alpha"}]}'
BAD = '{"steps": [{"id": "a", "type": "procedure_step", "title": "  "}]}'


def test_preview_prints_the_entries_and_writes_nothing(db):
    tree = _flow(db, GOOD)
    result = stepsync("preview", tree, url=db.url)
    assert result.returncode == 0, result.stderr
    assert "Alpha" in result.stdout and "1 entries" in result.stdout
    assert db.value("SELECT count(*) FROM step_library") == 0


def test_preview_of_a_bad_flow_is_a_one_line_23514(db):
    tree = _flow(db, BAD)
    result = stepsync("preview", tree, url=db.url)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'stepsync: database error [23514]: flow {tree} cannot be published: node "a" has no usable "title":'
        " it is a blank string (on public.trees, column tree_structure); JSON path: $.steps[0].title")


def test_check_lists_failing_flows_and_changes_nothing(db):
    good = _flow(db, GOOD, "published")
    bad = _flow(db, BAD)
    before = db.rows("SELECT t::text FROM trees t ORDER BY id") + db.rows("SELECT s::text FROM step_library s")
    result = stepsync("check", url=db.url)
    assert result.returncode == 1
    assert bad in result.stdout.replace("\n", "") or bad[:8] in result.stdout
    assert good not in result.stdout
    assert "1 flows fail the publish checks; 0 library differences" in result.stdout
    assert db.rows("SELECT t::text FROM trees t ORDER BY id") + db.rows("SELECT s::text FROM step_library s") == before


def test_check_is_clean_on_a_consistent_database(db):
    _flow(db, GOOD, "published")
    result = stepsync("check", url=db.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 flows fail the publish checks; 0 library differences" in result.stdout


def test_resync_all_repairs_the_library(db):
    tree = _flow(db, GOOD)
    with db.connect(autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
        conn.commit()
    assert db.value("SELECT count(*) FROM step_library") == 0
    result = stepsync("resync", "--all", url=db.url)
    assert result.returncode == 0, result.stderr
    assert "resynced 1 flows: 1 library rows written or retired" in result.stdout
    assert db.rows("SELECT source_node_id, is_active FROM step_library") == [("a", True)]
    assert stepsync("resync", tree, url=db.url).stdout.strip() == "resynced 1 flows: 0 library rows written or retired"


def test_resync_needs_a_flow_or_all(db):
    result = stepsync("resync", url=db.url)
    assert result.returncode == 2
    assert "give either a TREE_ID or --all" in result.stderr
