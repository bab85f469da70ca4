"""The stepsync command line: one-line errors, migrate, psql."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from stepsync.paths import REPO_ROOT


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
    assert empty_db.value("SELECT count(*) FROM alembic_version") == 1


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
    assert lines[0].startswith(f"stepsync: error: cannot connect to postgresql://someone:***@127.0.0.1:")
    assert "secret" not in result.stderr


def test_unknown_database_is_one_line(server):
    result = stepsync("migrate", url=server.url("no_such_database_here"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert 'database "no_such_database_here" does not exist' in result.stderr
