"""pg_dump / pg_restore round trips: the library comes back consistent, identical, and still syncing.

A populated database (published, draft, deactivated, archived and deleted
flows, usage counts, ratings, forks, a hand-made step) is dumped with
pg_dump -Fc and restored (a) whole into a new empty database, and (b) schema
first, then data only with --disable-triggers (so that the read-only guard
lets the synced rows in, as pg_restore intends). Each restored database must
pass the oracle, hold exactly the source's rows and schema, be at the
migration head, and go on publishing: pg_restore runs with an empty
search_path, which catches any unqualified name in the functions the restore
itself calls (the search index's expression).

pg_dump and pg_restore come from the server's bin folder; against a server
named by STEPSYNC_TEST_DSN (whose version need not match) one of the server's
major version when the machine has it, else the newest on the machine. They
are clients: they run fine as root.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from catalog import schema_snapshot
from flows import Flows, content, header, step
from stepsync import database
from stepsync.pgbin import candidate_bin_dirs, find_bin_dir

PROCEDURE = {"steps": [
    header("Prepare"),
    step("p1", "Stop the service", description="Stop it first.",
         commands=["systemctl stop app", {"code": "ps aux", "language": "bash", "label": "Check"}]),
    step("p2", "Back up the data", expected_outcome="A dump file.", library_visibility="public"),
    {"id": "end", "type": "procedure_end"},
]}
TROUBLESHOOTING = {"start": {"id": "q1", "type": "question", "title": "Does it boot?", "children": [
    {"id": "a1", "type": "action", "title": "Reseat the cable", "commands": "check-cable"},
    {"id": "q2", "type": "question", "title": "Lights on?", "options": [
        {"label": "no", "next": {"id": "s1", "type": "solution", "title": "Replace the PSU"}}]},
]}}


def _pg_version(binary: Path) -> tuple[int, ...]:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(x) for x in re.search(r"(\d+(?:\.\d+)*)", out).group(1).split("."))


class Tools:
    """pg_dump and pg_restore for the test server.

    The server's own bin folder (stepsync.pgbin.find_bin_dir()); against a server named by
    STEPSYNC_TEST_DSN, whose version need not match, one of the same major version if the
    machine has it, else the newest (pg_dump refuses servers newer than itself). A newer
    pg_restore sends settings an older server does not know (`SET transaction_timeout = 0`
    from 17 on): only those errors are tolerated, and only then.
    """

    def __init__(self, server_major: int) -> None:
        self.server_major = server_major
        if not os.environ.get("STEPSYNC_TEST_DSN"):
            self.bin_dir = find_bin_dir()
        else:
            usable = [c for c in candidate_bin_dirs() if (c / "pg_dump").exists() and (c / "pg_restore").exists()]
            if not usable:
                pytest.skip("no pg_dump/pg_restore on this machine")
            same = [c for c in usable if _pg_version(c / "pg_dump")[0] == server_major]
            self.bin_dir = max(same or usable, key=lambda c: _pg_version(c / "pg_dump"))
        self.major = _pg_version(self.bin_dir / "pg_dump")[0]

    def dump(self, url: str, path: Path) -> None:
        run([self.bin_dir / "pg_dump", "-Fc", "-f", path, "-d", url])

    def restore(self, url: str, path: Path, *options: str) -> None:
        argv = [self.bin_dir / "pg_restore", *options, "-d", url, path]
        if self.major <= self.server_major:
            run([argv[0], "--exit-on-error", *argv[1:]])
            return
        result = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
        errors = [line for line in result.stderr.splitlines() if "ERROR:" in line]
        assert all('unrecognized configuration parameter "transaction_timeout"' in e for e in errors), result.stderr
        assert result.returncode == 0 or "errors ignored on restore" in result.stderr, result.stderr


def run(argv: list) -> None:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(map(str, argv[:2]))} failed:\n{result.stderr}"


# --- the source database -----------------------------------------------------------------------------------------

def populate(db) -> dict:
    flows = Flows(db.conn)
    a = flows.actors
    ids = {}

    ids["procedure"] = flows.create({"steps": [*PROCEDURE["steps"], step("p3", "Start the service")]},
                                    name="Procedure")
    flows.publish(ids["procedure"])
    flows.update(ids["procedure"], tree_structure=PROCEDURE)          # p3 retired, its flow still listed
    ids["troubleshooting"] = flows.create(TROUBLESHOOTING, "troubleshooting", is_public=True, name="Boot")
    flows.publish(ids["troubleshooting"])
    ids["maintenance"] = flows.create({"steps": [step("m1", "Replace filters")]}, "maintenance", account=None,
                                      name="Quarterly")
    flows.publish(ids["maintenance"])
    ids["draft"] = flows.create({"steps": [step("d1", "Never published")]}, name="Draft")
    ids["back_to_draft"] = flows.create({"steps": [step("b1", "Published once")]}, name="Back to draft")
    flows.publish(ids["back_to_draft"])
    flows.update(ids["back_to_draft"], status="draft", tree_structure={"steps": [step("b1", "Edited as a draft")]})
    ids["deactivated"] = flows.create({"steps": [step("x1", "Deactivated step")]}, name="Deactivated")
    flows.publish(ids["deactivated"])
    flows.update(ids["deactivated"], is_active=False)
    ids["archived"] = flows.create({"steps": [step("r1", "Archived step")]}, name="Archived")
    flows.publish(ids["archived"])
    flows.update(ids["archived"], status="archived")
    deleted = flows.create({"steps": [step("g1", "Gone"), step("g2", "Gone too")]}, name="Deleted")
    flows.publish(deleted)

    def entry(node):
        return db.value("SELECT id FROM step_library WHERE source_node_id = %s AND is_flow_synced", (node,))

    for node, usage in (("p1", 7), ("p3", 2), ("a1", 5), ("g1", 4), ("x1", 1)):
        db.conn.execute("UPDATE step_library SET usage_count = %s WHERE id = %s", (usage, entry(node)))
    db.conn.execute("UPDATE step_library SET rating = 4.5, rating_count = 2 WHERE id = %s", (entry("p2"),))
    db.conn.execute("UPDATE step_library SET rating = 3.25, rating_count = 4 WHERE id = %s", (entry("s1"),))
    db.conn.execute("DELETE FROM trees WHERE id = %s", (deleted,))      # g1, g2 retired, source gone

    ids["fork"] = db.value("SELECT stepsync.fork_step(%s, %s)", (entry("p1"), a.author))
    ids["fork_of_public"] = db.value("SELECT stepsync.fork_step(%s, %s)", (entry("s1"), a.outsider))
    db.conn.execute("UPDATE step_library SET title = 'My own stop', usage_count = 3 WHERE id = %s", (ids["fork"],))
    ids["hand_made"] = db.value(
        "INSERT INTO step_library (title, step_type, content, visibility, created_by, account_id, usage_count)"
        " VALUES ('Hand-made', 'solution', %s, 'team', %s, %s, 9) RETURNING id",
        (psycopg.types.json.Jsonb(content("Written by hand")), a.author, a.account))
    ids["author"] = a.author
    return ids


def tables(conn) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()]


def contents(conn) -> dict:
    """Every public table: its row count and all its rows, ordered; trees and step_library as values."""
    out = {}
    for table in tables(conn):
        out[f"{table} count"] = conn.execute(f'SELECT count(*) FROM public."{table}"').fetchone()[0]
        out[table] = conn.execute(f'SELECT t::text FROM public."{table}" AS t ORDER BY 1').fetchall()
    for table in ("trees", "step_library"):
        out[f"{table} rows"] = conn.execute(f"SELECT * FROM public.{table} ORDER BY id").fetchall()
    return out


def oracle(conn) -> list:
    return conn.execute("SELECT * FROM stepsync.check_library()").fetchall()


@pytest.fixture
def source(db):
    ids = populate(db)
    assert oracle(db.conn) == []
    counts = dict(db.rows("SELECT is_flow_synced::text || '/' || is_active::text || '/' ||"
                          " (source_tree_id IS NULL)::text, count(*) FROM step_library GROUP BY 1"))
    # synced and active (p1, p2, a1, s1, m1, b1), retired (p3, x1, r1), retired without their flow (g1, g2),
    # hand-made and forks
    assert counts == {"true/true/false": 6, "true/false/false": 3, "true/false/true": 2, "false/true/true": 3}
    return ids


@pytest.fixture
def new_database(server):
    made = []

    def make(what: str) -> str:
        name = server.new_name(what)
        made.append(name)
        return server.create_database(name, "template0")

    yield make
    for name in made:
        server.drop_database(name)


@pytest.fixture
def tools(db) -> Tools:
    return Tools(db.value("SELECT current_setting('server_version_num')::int / 10000"))


@pytest.fixture
def dump(db, source, tools, tmp_path) -> Path:
    path = tmp_path / "stepsync.dump"
    tools.dump(db.url, path)
    return path


# --- checks on a restored database -------------------------------------------------------------------------------

def check_restored(db, url: str, ids: dict) -> None:
    head = _alembic_head(url)
    with psycopg.connect(url, autocommit=True) as conn:
        assert oracle(conn) == []
        assert contents(conn) == contents(db.conn)
        assert schema_snapshot(conn) == schema_snapshot(db.conn)   # triggers enabled again, functions, indexes
        assert conn.execute("SELECT version_num FROM stepsync_version").fetchall() == [(head,)]
        check_still_publishing(conn, ids)


def _alembic_head(url: str) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(database.alembic_config(url)).get_current_head()


def check_still_publishing(conn, ids: dict) -> None:
    def library(tree):
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT source_node_id, title, content, is_active, usage_count, xmin::text, id FROM step_library"
            " WHERE source_tree_id = %s", (tree,)).fetchall()}

    # a new flow, published
    new = conn.execute(
        "INSERT INTO trees (name, tree_type, tree_structure, author_id) VALUES ('After restore', 'procedural', %s, %s)"
        " RETURNING id", (psycopg.types.json.Jsonb({"steps": [header("New"), step("z1", "Fresh step")]}),
                          ids["author"])).fetchone()[0]
    conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (new,))
    assert {k: v[:3] for k, v in library(new).items()} == {
        "z1": ("Fresh step", content("Fresh step", group_label="New"), True)}

    # a republish with an edit: p1 retitled (rewritten, counts kept), p2 untouched, p3 back with its count
    proc = ids["procedure"]
    before = library(proc)
    edited = {"steps": [header("Prepare"),
                        {**PROCEDURE["steps"][1], "title": "Stop the service now"},
                        PROCEDURE["steps"][2], step("p3", "Start the service")]}
    conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s", (psycopg.types.json.Jsonb(edited), proc))
    after = library(proc)
    assert after["p1"][0] == "Stop the service now" and after["p1"][3] == 7 and after["p1"][5] == before["p1"][5]
    assert after["p2"] == before["p2"]                                  # not written at all: same xmin
    assert after["p3"][2:4] == (True, 2) and after["p3"][5] == before["p3"][5]
    assert oracle(conn) == []

    # synced rows are still read-only to clients, and usage counts still writable
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE step_library SET title = 'Edited by hand' WHERE id = %s", (after["p2"][5],))
    conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (after["p2"][5],))
    assert oracle(conn) == []


# --- the tests ---------------------------------------------------------------------------------------------------

def test_full_restore_into_an_empty_database(db, source, tools, dump, new_database):
    url = new_database("restore_full")
    tools.restore(url, dump)
    check_restored(db, url, source)


def test_schema_then_data_only_restore_with_disabled_triggers(db, source, tools, dump, new_database):
    url = new_database("restore_data")
    tools.restore(url, dump, "--schema-only")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM step_library").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.step_library'::regclass"
                            " AND NOT tgisinternal").fetchone()[0] > 0
    tools.restore(url, dump, "--data-only", "--disable-triggers")
    check_restored(db, url, source)
