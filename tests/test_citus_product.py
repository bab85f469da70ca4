"""docs/contract.md §2-§7 and §10 on a Citus cluster (§11.3): the single-node suites' scenarios, run
against the distributed variant that `stepsync install` puts on a laid-out coordinator.

The scenarios are the ones of tests/test_sync.py, test_checks.py, test_library.py, test_search.py,
test_isolation.py and the CLI tests, with the same flows (tools/examples/ included), the same exact
rows, JSON and SQLSTATEs, and the same "nothing else changed" checks (row versions included). Where
the contract says "as on one node" (the publish checks, search_steps, check_library) the same library
is also built on a single-node PostgreSQL of the project's harness (tests/conftest.py) and compared.

Only what Citus forces is different, and each test says so where it is: a client UPDATE of trees may
not call a STABLE function with column references (the statements here use literal JSON or immutable
operators); the entries view leaves tree_key out as it leaves search_vector out; a deleted flow's
entries keep tree_key (the flow's id), so a flow inserted again with the same id takes them back.

Runs only when STEPSYNC_CITUS_DSN names a superuser URL of a Citus coordinator (skipped without it).
Each test gets a fresh database on every node (laid out as §11.1, stepsync installed), dropped at the
end; the publish-check cases share one such database (each case adds only its own draft flow).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from flows import Flows, RawJson, chain_json, cmd, content, header, step
from test_checks import CASES, S
from test_library import FORK_HINT
from test_sync import PROCEDURE, TROUBLE

DSN_ENV = "STEPSYNC_CITUS_DSN"
DSN = os.environ.get(DSN_ENV)

pytestmark = pytest.mark.skipif(
    not DSN, reason=f"{DSN_ENV} is not set: these tests need an existing Citus cluster (docs/scaling.md §2.0)")

REPO = Path(__file__).resolve().parents[1]
APPLICATION_TABLES = REPO / "db" / "migrations" / "sql" / "stepsync_0001" / "application_tables.sql"

# §11.1: the application's tables of the standalone path, laid out for Citus.
LAYOUT = [
    "ALTER TABLE public.step_library ADD COLUMN tree_key uuid NOT NULL DEFAULT gen_random_uuid()",
    "ALTER TABLE public.step_library DROP CONSTRAINT step_library_pkey,"
    " ADD CONSTRAINT step_library_pkey PRIMARY KEY (tree_key, id)",
    "SELECT create_reference_table('public.accounts')",
    "SELECT create_reference_table('public.users')",
    "SELECT create_distributed_table('public.trees', 'id')",
    "SELECT create_distributed_table('public.step_library', 'tree_key', colocate_with => 'public.trees')",
]

SYNC_TRIGGERS = ("t30_sync_on_insert", "t31_sync_on_update", "t32_sync_on_structure", "t33_sync_on_settings")
ON_COORDINATOR = "stepsync: on Citus the sync runs on the worker that holds the flow, not on the coordinator"


def url_for(dbname: str, *, port: int | None = None, user: str | None = None) -> str:
    """STEPSYNC_CITUS_DSN with another database (and another port for a worker, another user)."""
    parts = urlsplit(DSN or "")
    credentials, _, host = parts.netloc.rpartition("@")
    if port is not None:
        host = f"{host.rsplit(':', 1)[0]}:{port}"
    if user is not None:
        credentials = user
    netloc = f"{credentials}@{host}" if credentials else host
    return urlunsplit((parts.scheme, netloc, f"/{dbname}", parts.query, parts.fragment))


class CitusDb:
    """One test's database on the cluster: the coordinator's URL and an autocommit connection to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = url_for(name)
        self.conn = psycopg.connect(self.url, autocommit=True)

    def connect(self, **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        return psycopg.connect(self.url, **kwargs)

    def rows(self, sql: str, params=None) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def value(self, sql: str, params=None):
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]


@contextlib.contextmanager
def citus_database(*, install: bool) -> Iterator[CitusDb]:
    """A fresh database with citus on every node, the §1 tables laid out as §11.1, stepsync installed
    (as the brief's `stepsync.install.install`) when INSTALL; dropped at the end."""
    name = f"stepsync_cp_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(DSN, autocommit=True) as admin:
        workers = admin.execute("SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary'"
                                " AND groupid <> 0 ORDER BY nodeport").fetchall()
        coordinator = admin.execute("SELECT nodename, nodeport FROM pg_dist_node WHERE groupid = 0").fetchone()
        admin.execute("SET citus.enable_create_database_propagation = on")
        admin.execute(f"CREATE DATABASE {name}")
        db = None
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
                conn.execute(APPLICATION_TABLES.read_text(encoding="utf-8"))
                for statement in LAYOUT:
                    conn.execute(statement)
            if install:
                from stepsync import install as installer

                said: list[str] = []
                installer.install(url_for(name), say=said.append, warn=said.append)
            db = CitusDb(name)
            yield db
        finally:
            if db is not None:
                db.conn.close()
            drop_database(admin, name, [port for _, port in workers])


def drop_database(admin, name: str, worker_ports: list[int]) -> None:
    """DROP DATABASE on every node. The coordinator's connections to the workers close a moment after its
    sessions do, and the propagated drop fails (55006) while one is still there, sometimes after it dropped
    the database on one worker but not the other (then a propagated drop fails there with 3D000): end the
    sessions, retry, and in the end drop it node by node."""
    for attempt in range(10):
        try:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except (psycopg.errors.ObjectInUse, psycopg.errors.InvalidCatalogName):
            for port in worker_ports:
                with psycopg.connect(url_for("postgres", port=port), autocommit=True) as worker:
                    worker.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                   (name,))
                    if attempt >= 2:
                        worker.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if attempt >= 2:
                admin.execute("SET citus.enable_create_database_propagation = off")
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.execute("SET citus.enable_create_database_propagation = on")
                return
            time.sleep(0.3)


@pytest.fixture
def cdb() -> Iterator[CitusDb]:
    """A fresh laid-out database with stepsync installed."""
    with citus_database(install=True) as db:
        yield db


@pytest.fixture
def laid_out() -> Iterator[CitusDb]:
    """A fresh laid-out database without stepsync."""
    with citus_database(install=False) as db:
        yield db


@pytest.fixture(scope="module")
def shared_cdb() -> Iterator[CitusDb]:
    """One installed database for the publish-check cases (each adds only its own draft flow)."""
    with citus_database(install=True) as db:
        yield db


@pytest.fixture
def flows(cdb) -> Flows:
    return Flows(cdb.conn)


@pytest.fixture(scope="module")
def shared_flows(shared_cdb) -> Flows:
    return Flows(shared_cdb.conn)


def oracle(conn) -> list[tuple]:
    return conn.execute("SELECT difference, tree_id, source_node_id FROM stepsync.check_library()"
                        " ORDER BY 1, 2, 3").fetchall()


def workers_of(conn, tree_ids) -> set[tuple[str, int]]:
    """The workers (nodename, nodeport) that hold these flows' shards."""
    return {(h, p) for h, p in conn.execute(
        "SELECT DISTINCT n.nodename, n.nodeport FROM unnest(%s::uuid[]) AS t(id)"
        "  JOIN pg_dist_placement AS p"
        "    ON p.shardid = get_shard_id_for_distribution_column('public.trees', t.id)"
        "  JOIN pg_dist_node AS n ON n.groupid = p.groupid", (list(tree_ids),)).fetchall()}


def all_workers(conn) -> set[tuple[str, int]]:
    return {(h, p) for h, p in conn.execute(
        "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary'").fetchall()}


@contextlib.contextmanager
def sync_triggers_off(conn):
    """Write trees behind the sync's back (to make the library stale for sync_tree, check and resync)."""
    for trigger in SYNC_TRIGGERS:
        conn.execute(f"ALTER TABLE public.trees DISABLE TRIGGER {trigger}")
    try:
        yield
    finally:
        for trigger in SYNC_TRIGGERS:
            conn.execute(f"ALTER TABLE public.trees ENABLE TRIGGER {trigger}")


def refused(conn, sql, params=None) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, params)
    return info.value


def by_node(rows) -> dict:
    return {r["source_node_id"]: r for r in rows}


# --- §2, §3: what a publish writes ------------------------------------------------------------------------------------


def test_procedural_publish_writes_exact_entries(flows):
    tree = flows.create(PROCEDURE)
    assert flows.library(tree) == []
    flows.publish(tree)
    rows = flows.library(tree)
    a = flows.actors
    assert [(r["source_node_id"], r["title"], r["step_type"], r["visibility"], r["created_by"], r["account_id"],
             r["is_flow_synced"], r["is_active"], r["usage_count"], r["rating"], r["rating_count"],
             r["forked_from_id"]) for r in rows] == [
        ("s-backup", "Confirm the backup", "action", "public", a.author, a.account, True, True, 0, None, 0, None),
        ("s-blank-header", "Step under a blank header", "action", "team", a.author, a.account,
         True, True, 0, None, 0, None),
        ("s-check", "Check replication", "action", "team", a.author, a.account, True, True, 0, None, 0, None),
        ("s-intro", "Read the runbook", "action", "team", a.author, a.account, True, True, 0, None, 0, None),
        ("s-promote", "Promote", "action", "team", a.author, a.account, True, True, 0, None, 0, None),
    ]
    assert {r["source_node_id"]: r["content"] for r in rows} == {
        "s-intro": content("Read the runbook"),
        "s-check": content("Run the query on the primary.", "One row per replica.",
                           [cmd("SELECT * FROM pg_stat_replication;")], "Prepare"),
        "s-backup": content("Confirm the backup", None, [
            cmd("pgbackrest info"), cmd("ls /backups", "List", "bash"), cmd("du -sh /backups"), cmd("df -h"),
        ], "Prepare"),
        "s-blank-header": content("Step under a blank header", None, [], None),
        "s-promote": content("Promote", None, [], "Promote"),
    }
    synced_at = {r["last_synced_at"] for r in rows}
    assert len(synced_at) == 1 and None not in synced_at
    # §11.1: a synced entry lives under its flow's id, on the flow's worker.
    assert flows.conn.execute("SELECT DISTINCT tree_key FROM step_library").fetchall() == [(tree,)]
    assert flows.conn.execute("SELECT count(*) FROM step_library").fetchone() == (5,)


def test_troubleshooting_publish_walks_every_object(flows):
    tree = flows.create(TROUBLE, tree_type="troubleshooting", is_public=False)
    flows.publish(tree)
    assert flows.entries(tree) == {
        "a-plug": ("Plug it in", "action", content("Use the wall socket.", "It should not be ignored",
                                                  [cmd("check-power", command_type="bash")]), "team", True),
        "s-fuse": ("Replace the fuse", "solution", content("Replace the fuse"), "team", True),
        "s-lamp": ("Replace the lamp", "solution", content("Replace the lamp", commands=[cmd("order lamp")]),
                   "team", True),
        "a-deep": ("Deep in nested arrays", "action", content("Deep in nested arrays"), "team", True),
        "a-meta": ("Found under any key", "action", content("Found under any key"), "team", True),
    }


def test_a_chain_5000_deep_syncs(flows):
    tree = flows.create(RawJson(chain_json(5000)), tree_type="troubleshooting")
    flows.publish(tree)
    assert flows.conn.execute("SELECT count(*), count(*) FILTER (WHERE is_active) FROM step_library"
                              " WHERE source_tree_id = %s", (tree,)).fetchone() == (2500, 2500)
    assert oracle(flows.conn) == []


def test_preview_is_in_walk_order_and_equals_what_publish_writes(flows):
    tree = flows.create(TROUBLE, tree_type="troubleshooting")
    preview = flows.conn.execute("SELECT * FROM stepsync.preview(%s)", (tree,)).fetchall()
    assert [row[0] for row in preview] == ["a-meta", "a-plug", "s-fuse", "a-deep", "s-lamp"]
    assert flows.library() == []  # preview writes nothing
    flows.publish(tree)
    written = [(r["source_node_id"], r["title"], r["step_type"], r["content"], r["visibility"])
               for r in flows.library(tree)]
    assert sorted(preview, key=lambda row: row[0]) == sorted(written, key=lambda row: row[0])
    procedure = flows.create(PROCEDURE, name="procedure")
    assert [r[0] for r in flows.conn.execute("SELECT source_node_id FROM stepsync.preview(%s)", (procedure,))] == [
        "s-intro", "s-check", "s-backup", "s-blank-header", "s-promote"]


def test_preview_of_an_unknown_flow_is_p0002_and_of_a_bad_one_23514(flows):
    error = refused(flows.conn, "SELECT * FROM stepsync.preview(gen_random_uuid())")
    assert error.sqlstate == "P0002"
    tree = flows.create(S(step("a", "A"), step("a", "B")))
    error = refused(flows.conn, "SELECT * FROM stepsync.preview(%s)", (tree,))
    assert error.sqlstate == "23514"
    assert error.diag.message_primary == (
        f'flow {tree} cannot be published: node "a" appears more than once in the flow (first at $.steps[0])')


def test_insert_as_published_syncs_and_draft_insert_does_not(flows):
    published = flows.create({"steps": [step("a", "A")]}, status="published", name="P")
    draft = flows.create({"steps": [step("a", "A")]}, status="draft", name="D")
    inactive = flows.create({"steps": [step("a", "A")]}, status="published", is_active=False, name="I")
    assert list(flows.entries(published)) == ["a"]
    assert flows.library(draft) == [] and flows.library(inactive) == []
    assert len(flows.library()) == 1


def test_the_example_flows_publish(cdb, flows):
    from stepsync import demo

    ids = demo.load_examples(cdb.conn)
    cdb.conn.execute("UPDATE trees SET status = 'published' WHERE id = ANY(%s)", (list(ids.values()),))
    counts = {}
    for name, tree in ids.items():
        counts[name] = cdb.value("SELECT count(*) FROM step_library WHERE source_tree_id = %s AND is_active", (tree,))
        preview = cdb.rows("SELECT * FROM stepsync.preview(%s) ORDER BY source_node_id", (tree,))
        written = cdb.rows(
            "SELECT source_node_id, title, step_type, content, visibility FROM step_library"
            " WHERE source_tree_id = %s ORDER BY source_node_id", (tree,))
        assert preview == written
    assert sorted(counts.values()) == [25, 29, 30]
    assert cdb.value("SELECT count(*) FROM step_library") == 84
    assert oracle(cdb.conn) == []


# --- §5: when the library changes -------------------------------------------------------------------------------------


def test_republish_rewrites_only_the_changed_entry_and_keeps_counts(flows):
    steps = [step(f"s{i:02}", f"Step {i}") for i in range(10)]
    tree = flows.create({"steps": steps})
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 5, rating = 4.5, rating_count = 2"
                       " WHERE source_node_id = 's03'")
    flows.conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE source_node_id = 's07'")
    before = by_node(flows.library(tree))

    steps[3] = step("s03", "Step 3, reworded", description="Now with a description")
    flows.update(tree, tree_structure={"steps": steps})
    after = by_node(flows.library(tree))

    assert [n for n in after if after[n]["xmin"] != before[n]["xmin"]] == ["s03"]
    for node in after:
        if node != "s03":
            assert after[node] == before[node]     # last_synced_at and the row version included
    row, old = after["s03"], before["s03"]
    assert (row["title"], row["content"]) == ("Step 3, reworded", content("Now with a description"))
    for kept in ("id", "usage_count", "rating", "rating_count", "created_by", "created_at"):
        assert row[kept] == old[kept]
    assert (str(row["rating"]), row["usage_count"], after["s07"]["usage_count"]) == ("4.50", 5, 1)
    assert row["last_synced_at"] > old["last_synced_at"]
    assert row["updated_at"] > old["updated_at"]
    assert oracle(flows.conn) == []


def test_removed_node_is_retired_and_revived_with_counts_intact(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 9 WHERE source_node_id = 'b'")
    before = by_node(flows.library(tree))

    flows.update(tree, tree_structure={"steps": [step("a", "A")]})
    retired = by_node(flows.library(tree))
    assert retired["a"] == before["a"]
    assert retired["b"]["is_active"] is False
    for kept in ("id", "title", "content", "usage_count", "visibility", "last_synced_at", "source_tree_id"):
        assert retired["b"][kept] == before["b"][kept]
    assert retired["b"]["updated_at"] > before["b"]["updated_at"]

    flows.update(tree, tree_structure={"steps": [step("a", "A"), step("b", "B")]})
    revived = by_node(flows.library(tree))
    assert revived["b"]["is_active"] is True
    assert (revived["b"]["id"], revived["b"]["usage_count"]) == (before["b"]["id"], 9)
    assert revived["b"]["last_synced_at"] > before["b"]["last_synced_at"]
    assert revived["a"] == before["a"]
    assert oracle(flows.conn) == []


def test_node_that_stops_syncing_is_retired(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    flows.update(tree, tree_structure={"steps": [step("a", "A"), header("B", node_id="b")]})
    assert {n: e[4] for n, e in flows.entries(tree).items()} == {"a": True, "b": False}


@pytest.mark.parametrize("change", [{"is_active": False}, {"status": "archived"}], ids=["deactivate", "archive"])
def test_deactivate_or_archive_retires_all_and_listing_again_revives(flows, change):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    other = flows.create({"steps": [step("a", "Other")]}, status="published", name="other")
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 3 WHERE source_tree_id = %s", (tree,))
    before = by_node(flows.library(tree))
    untouched = flows.library(other)
    flows.update(tree, **change)
    assert [(r["source_node_id"], r["is_active"], r["usage_count"]) for r in flows.library(tree)] == [
        ("a", False, 3), ("b", False, 3)]
    for r in flows.library(tree):
        for kept in ("id", "title", "content", "visibility", "last_synced_at", "source_tree_id"):
            assert r[kept] == before[r["source_node_id"]][kept]
    flows.update(tree, status="published", is_active=True)
    assert [(r["id"], r["is_active"], r["usage_count"]) for r in flows.library(tree)] == [
        (before["a"]["id"], True, 3), (before["b"]["id"], True, 3)]
    assert flows.library(other) == untouched
    assert oracle(flows.conn) == []


def test_back_to_draft_keeps_the_library_until_the_next_publish(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    before = flows.library(tree)
    flows.update(tree, status="draft")
    flows.update(tree, tree_structure={"steps": [step("a", "A edited in draft")]})
    assert flows.library(tree) == before
    flows.publish(tree)
    assert {n: (e[0], e[4]) for n, e in flows.entries(tree).items()} == {
        "a": ("A edited in draft", True), "b": ("B", False)}


def test_delete_retires_entries_nulls_their_source_and_keeps_tree_key(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    other = flows.create({"steps": [step("a", "Other")]}, status="published", name="other")
    flows.conn.execute("UPDATE step_library SET usage_count = 4 WHERE source_tree_id = %s AND source_node_id = 'a'",
                       (tree,))
    before = by_node(flows.library(tree))
    untouched = flows.library(other)
    flows.conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    where = f"id IN ('{before['a']['id']}', '{before['b']['id']}')"
    after = {r["source_node_id"]: r for r in flows.library(where=where)}
    for node in ("a", "b"):
        assert (after[node]["is_active"], after[node]["source_tree_id"], after[node]["is_flow_synced"]) == (
            False, None, True)
        for kept in ("id", "title", "content", "usage_count", "created_by", "last_synced_at", "visibility"):
            assert after[node][kept] == before[node][kept]
    assert flows.conn.execute("SELECT source_node_id, tree_key FROM step_library WHERE id = ANY(%s) ORDER BY 1",
                              ([before["a"]["id"], before["b"]["id"]],)).fetchall() == [("a", tree), ("b", tree)]
    assert flows.library(other) == untouched
    assert flows.conn.execute("SELECT count(*) FROM step_library").fetchone() == (3,)
    assert oracle(flows.conn) == []


def test_a_deleted_flow_inserted_again_with_its_id_takes_its_old_entries_back(flows):
    """Citus: the deleted flow's entries keep tree_key = its id and the upsert key is (tree_key,
    source_node_id), so the same flow id published again revives them (ids and counts kept)."""
    a = flows.actors
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]}, status="published", name="Again")
    flows.conn.execute("UPDATE step_library SET usage_count = 7, rating = 3, rating_count = 1"
                       " WHERE source_tree_id = %s AND source_node_id = 'a'", (tree,))
    before = by_node(flows.library(tree))
    flows.conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    flows.conn.execute(
        "INSERT INTO trees (id, name, tree_type, tree_structure, status, account_id, author_id)"
        " VALUES (%s, 'Again', 'procedural', %s, 'published', %s, %s)",
        (tree, Jsonb({"steps": [step("a", "A"), step("c", "C")]}), a.account, a.author))
    rows = flows.conn.execute(
        "SELECT source_node_id, id, is_active, source_tree_id, tree_key, usage_count, rating::text, rating_count"
        " FROM step_library ORDER BY source_node_id").fetchall()
    c_id = rows[2][1]
    assert rows == [
        ("a", before["a"]["id"], True, tree, tree, 7, "3.00", 1),
        ("b", before["b"]["id"], False, None, tree, 0, None, 0),
        ("c", c_id, True, tree, tree, 0, None, 0),
    ]
    assert oracle(flows.conn) == []


def test_hand_made_rows_and_forks_are_never_touched(flows):
    tree = flows.create({"steps": [step("a", "A")]})
    flows.publish(tree)
    [synced] = flows.library(tree)
    hand = flows.conn.execute(
        "INSERT INTO step_library (title, step_type, content, visibility) VALUES ('Mine', 'action', '{}', 'private')"
        " RETURNING id").fetchone()[0]
    fork = flows.conn.execute(
        "INSERT INTO step_library (title, step_type, content, forked_from_id) VALUES ('A', 'action', %s, %s)"
        " RETURNING id", (Jsonb(synced["content"]), synced["id"])).fetchone()[0]
    others = flows.library(where=f"id IN ('{hand}', '{fork}')")
    flows.update(tree, tree_structure={"steps": [step("b", "B")]})
    flows.update(tree, is_active=False)
    flows.update(tree, is_active=True)
    flows.conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    assert flows.library(where=f"id IN ('{hand}', '{fork}')") == others


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"is_public": True}, ("public", "account")),
        ({"account_id": None}, ("team", None)),
        ({"tree_type": "maintenance"}, ("team", "account")),
    ],
    ids=["is_public", "account_id", "tree_type"],
)
def test_flow_metadata_the_library_depends_on_resyncs(flows, change, expected):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B", library_visibility="team")]})
    flows.publish(tree)
    flows.update(tree, **change)
    account = flows.actors.account if expected[1] == "account" else None
    assert [(r["source_node_id"], r["visibility"], r["account_id"]) for r in flows.library(tree)] == [
        ("a", expected[0], account), ("b", "team", account)]


def test_tree_type_change_to_troubleshooting_retires_procedure_steps(flows):
    tree = flows.create({"steps": [step("a", "A")]})
    flows.publish(tree)
    flows.update(tree, tree_type="troubleshooting")
    assert {n: e[4] for n, e in flows.entries(tree).items()} == {"a": False}


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE trees SET name = 'Renamed' WHERE id = %(id)s",
        "UPDATE trees SET description = 'New words' WHERE id = %(id)s",
        "UPDATE trees SET status = 'published' WHERE id = %(id)s",
        "UPDATE trees SET tree_structure = tree_structure WHERE id = %(id)s",
        "UPDATE trees SET tree_structure = %(same)s::jsonb WHERE id = %(id)s",
        "UPDATE trees SET name = name, description = description, tree_type = tree_type,"
        " tree_structure = tree_structure, status = status, is_active = is_active, is_public = is_public,"
        " account_id = account_id, author_id = author_id WHERE id = %(id)s",
    ],
    ids=["rename", "description", "republish-status", "same-structure", "same-structure-literal", "orm-rewrite"],
)
def test_writes_that_change_nothing_relevant_do_no_library_work(flows, sql):
    structure = {"steps": [step("a", "A"), step("b", "B")]}
    tree = flows.create(structure)
    flows.publish(tree)
    before = flows.library()
    flows.conn.execute(sql, {"id": tree, "same": json.dumps(structure)})
    assert flows.library() == before      # not a row version changed


# --- §5 on several workers: one statement, many flows -----------------------------------------------------------------


def spread_flows(flows, n: int = 24) -> list[uuid.UUID]:
    """N draft flows (two steps each) whose shards are on every worker."""
    trees = [flows.create({"steps": [step("a", f"A{i}"), step("b", f"B{i}")]}, name=f"F{i}") for i in range(n)]
    assert workers_of(flows.conn, trees) == all_workers(flows.conn)
    assert len(all_workers(flows.conn)) >= 2
    return trees


def test_one_update_publishes_many_flows_on_both_workers(flows):
    conn = flows.conn
    trees = spread_flows(flows)
    assert conn.execute("SELECT count(DISTINCT (nodename, nodeport)) FROM citus_shards"
                        " WHERE table_name = 'public.trees'::regclass").fetchone() == (2,)
    conn.execute("UPDATE trees SET status = 'published' WHERE id = ANY(%s)", (trees,))
    for i, tree in enumerate(trees):
        assert {n: (e[0], e[4]) for n, e in flows.entries(tree).items()} == {"a": (f"A{i}", True),
                                                                             "b": (f"B{i}", True)}
    assert conn.execute("SELECT count(*), count(DISTINCT tree_key) FROM step_library").fetchone() == (48, 24)
    assert oracle(conn) == []

    # One UPDATE that edits every flow's first step (an immutable operator on the stored document):
    # in each flow only that entry is rewritten.
    conn.execute("UPDATE step_library SET usage_count = 2 WHERE source_node_id = 'b'")
    before = {(r["source_tree_id"], r["source_node_id"]): r for r in flows.library()}
    conn.execute("""UPDATE trees SET tree_structure = jsonb_set(tree_structure, '{steps,0,title}', '"Edited"')"""
                 " WHERE id = ANY(%s)", (trees,))
    after = {(r["source_tree_id"], r["source_node_id"]): r for r in flows.library()}
    assert sorted(k for k in after if after[k]["xmin"] != before[k]["xmin"]) == sorted((t, "a") for t in trees)
    assert {after[k]["title"] for k in after if k[1] == "a"} == {"Edited"}
    assert all(after[k] == before[k] for k in after if k[1] == "b")

    # One UPDATE that deactivates flows on both workers.
    off = trees[::2]
    assert workers_of(conn, off) == all_workers(conn)
    conn.execute("UPDATE trees SET is_active = false WHERE id = ANY(%s)", (off,))
    assert [all(not e[4] for e in flows.entries(t).values()) for t in trees] == [t in off for t in trees]
    assert oracle(conn) == []


def test_a_bad_row_in_a_multi_worker_publish_fails_the_whole_statement(flows):
    trees = spread_flows(flows, 12)
    bad = flows.create(S(step("a", None)), name="bad")
    before = flows.snapshot()
    error = refused(flows.conn, "UPDATE trees SET status = 'published' WHERE id = ANY(%s)", ([*trees, bad],))
    assert error.sqlstate == "23514"
    assert error.diag.message_primary == f'flow {bad} cannot be published: node "a" has no usable "title": it is null'
    assert error.diag.message_detail == "JSON path: $.steps[0].title"
    assert flows.snapshot() == before


# --- §4: publish-time checks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, tree_type, structure, problem, path, hint", CASES, ids=[c[0] for c in CASES])
def test_bad_structure_fails_the_publish_and_changes_nothing(shared_flows, name, tree_type, structure, problem, path,
                                                             hint):
    flows = shared_flows
    tree = flows.create(structure, tree_type=tree_type, name=name)  # drafts may hold anything
    before = flows.snapshot()
    error = refused(flows.conn, "UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
    assert error.sqlstate == "23514"
    assert error.diag.message_primary == f"flow {tree} cannot be published: {problem}"
    assert error.diag.message_detail == f"JSON path: {path}"
    assert error.diag.message_hint.startswith(hint)
    assert flows.snapshot() == before


def test_the_publish_check_error_on_citus_names_no_table_or_column(shared_flows):
    """docs/contract.md §11.4: Citus relays a worker's error with its SQLSTATE, message, DETAIL and HINT (the
    tests above) but not the table and column fields that the 23514 carries on one node."""
    tree = shared_flows.create(S(step("s1", None)), name="table and column")
    error = refused(shared_flows.conn, "UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
    assert (error.sqlstate, error.diag.table_name, error.diag.column_name) == ("23514", None, None)


@pytest.mark.parametrize("name, tree_type, structure, problem, path, hint", CASES[:12],
                         ids=[c[0] for c in CASES[:12]])
def test_bad_structure_in_an_insert_as_published_inserts_nothing(shared_flows, name, tree_type, structure, problem,
                                                                 path, hint):
    flows = shared_flows
    before = flows.snapshot()
    with pytest.raises(psycopg.Error) as info:
        flows.create(structure, tree_type=tree_type, status="published")
    assert info.value.sqlstate == "23514"
    assert info.value.diag.message_primary.endswith(f"cannot be published: {problem}")
    assert info.value.diag.message_detail == f"JSON path: {path}"
    assert flows.snapshot() == before


def test_the_publish_check_messages_are_those_of_one_node(shared_flows, db):
    """The same failing publishes on a single-node database (tests/conftest.py) give the same
    SQLSTATE, message, DETAIL and HINT. (Not the error's table and column fields: Citus relays a
    worker's error without them; see test_the_publish_check_error_names_table_and_column.)"""
    single = Flows(db.conn)

    def failure(flows, structure, tree_type):
        tree = flows.create(structure, tree_type=tree_type, name="same")
        with pytest.raises(psycopg.Error) as info:
            flows.publish(tree)
        d = info.value.diag
        return (info.value.sqlstate, d.message_primary.replace(str(tree), "<tree>"), d.message_detail,
                d.message_hint)

    for _name, tree_type, structure, *_ in CASES:
        assert failure(shared_flows, structure, tree_type) == failure(single, structure, tree_type), _name


def test_a_bad_republish_keeps_the_flow_and_its_library(flows):
    tree = flows.create(S(step("a", "A"), step("b", "B")))
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 4")
    before = flows.snapshot()
    error = refused(flows.conn, "UPDATE trees SET tree_structure = %s WHERE id = %s",
                    (Jsonb(S(step("a", "A"), step("a", "B"))), tree))
    assert error.sqlstate == "23514"
    assert flows.snapshot() == before


def test_only_nodes_that_would_sync_are_checked_and_drafts_hold_anything(flows):
    procedural = flows.create(S(
        {"type": "note", "id": 5, "title": None, "commands": 7, "description": []},
        {"type": "section_header", "title": 3},
        {"id": "s1", "type": "procedure_step", "title": "Fine", "extra": {"anything": [None, 1]}},
        {"type": "procedure_end"},
    ), name="procedural")
    flows.publish(procedural)
    assert {n: e[3] for n, e in flows.entries(procedural).items()} == {"s1": "team"}
    flows.update(procedural, status="draft")
    flows.update(procedural, tree_structure="not even an object")
    flows.update(procedural, status="archived")
    assert [r["is_active"] for r in flows.library(procedural)] == [False]


def test_a_problem_deep_in_a_chain_is_23514_never_a_stack_overflow(flows):
    good = chain_json(3000)
    bad = good.replace('{"id": "n2499", "type": "action", "title": "Node 2499"',
                       '{"id": "n2499", "type": "action", "title": "  "', 1)
    assert bad != good
    tree = flows.create(RawJson(bad), tree_type="troubleshooting")
    before = flows.snapshot()
    error = refused(flows.conn, "UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
    assert error.sqlstate == "23514"
    assert error.diag.message_primary == (
        f'flow {tree} cannot be published: node "n2499" has no usable "title": it is a blank string')
    assert error.diag.message_detail == "JSON path: $.**{4000 to 4999}.title"
    assert flows.snapshot() == before


# --- concurrency: a publish racing a deactivate ----------------------------------------------------------------------


def _waiting(conn, pid: int) -> bool:
    return conn.execute("SELECT wait_event_type IS NOT NULL AND state = 'active' FROM pg_stat_activity"
                        " WHERE pid = %s", (pid,)).fetchone() == (True,)


@pytest.mark.parametrize("first", ["publish", "deactivate"])
def test_a_publish_blocked_by_a_deactivate_and_the_reverse_end_consistent(cdb, flows, first):
    """Two sessions on the coordinator: the first holds the flow's row on its worker; the second waits
    for it, then runs on the committed row. Either way the library is what §5 gives (the oracle)."""
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    if first == "deactivate":
        flows.publish(tree)
    statements = {
        "publish": ("UPDATE trees SET status = 'published', tree_structure = %s WHERE id = %s",
                    (Jsonb({"steps": [step("a", "A, edited"), step("c", "C")]}), tree)),
        "deactivate": ("UPDATE trees SET is_active = false WHERE id = %s", (tree,)),
    }
    second = "deactivate" if first == "publish" else "publish"
    errors: list[BaseException] = []
    with cdb.connect(autocommit=False) as one, cdb.connect() as two:
        one.execute(*statements[first])
        pid = two.info.backend_pid

        def run_second():
            try:
                two.execute(*statements[second])
            except BaseException as exc:   # reported below
                errors.append(exc)

        thread = threading.Thread(target=run_second)
        thread.start()
        deadline = time.monotonic() + 10
        while not _waiting(cdb.conn, pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert thread.is_alive(), "the second statement did not wait for the first"
        one.commit()
        thread.join(30)
    assert not thread.is_alive() and errors == []
    assert cdb.rows("SELECT status, is_active FROM trees WHERE id = %s", (tree,)) == [("published", False)]
    entries = {n: e[4] for n, e in flows.entries(tree).items()}
    if first == "publish":
        assert entries == {"a": False, "c": False}     # published, then deactivated: all retired
    else:
        assert entries == {"a": False, "b": False}     # deactivated: the publish of an inactive flow syncs nothing
    assert oracle(cdb.conn) == []


def test_publishes_racing_deactivates_on_both_workers_end_consistent(cdb, flows):
    """Many rounds of a publish and a deactivate of the same flows, started together from two sessions
    (flows on both workers, each UPDATE taking them all): no deadlock, no error, the oracle clean."""
    trees = spread_flows(flows, 8)
    for round_ in range(6):
        flows.conn.execute("UPDATE trees SET is_active = true, status = 'draft' WHERE id = ANY(%s)", (trees,))
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []
        structure = Jsonb({"steps": [step("a", f"A{round_}"), step(f"r{round_}", "R")]})

        def run(sql, params, barrier=barrier, errors=errors):
            try:
                with cdb.connect() as conn:
                    barrier.wait(10)
                    conn.execute(sql, params)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=run, args=("UPDATE trees SET status = 'published', tree_structure = %s"
                                               " WHERE id = ANY(%s)", (structure, trees))),
            threading.Thread(target=run, args=("UPDATE trees SET is_active = false WHERE id = ANY(%s)", (trees,))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert oracle(cdb.conn) == [], f"round {round_}"
        assert cdb.value("SELECT count(*) FROM step_library WHERE is_active") == 0


# --- §6.1: the read-only rule -----------------------------------------------------------------------------------------


@pytest.fixture
def client(cdb) -> Iterator[str]:
    """A login role that is not the owner and may read and write both tables directly; its URL."""
    role = f"stepsync_cp_client_{uuid.uuid4().hex[:8]}"
    cdb.conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        cdb.conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.step_library TO {role}")
        cdb.conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.trees TO {role}")
        cdb.conn.execute(f"GRANT SELECT ON public.users, public.accounts TO {role}")
        yield url_for(cdb.name, user=role)
    finally:
        # Dropped at the end of the module, after the databases (it owns nothing; its grants go with them).
        _roles_to_drop.append(role)


_roles_to_drop: list[str] = []


@pytest.fixture(autouse=True, scope="module")
def _drop_roles() -> Iterator[None]:
    yield
    if DSN and _roles_to_drop:
        # On every node: a DROP ROLE from the coordinator's stepsync database does not always reach the
        # workers (the roles were created through the test databases, which are gone by now).
        with psycopg.connect(DSN, autocommit=True) as admin:
            ports = [p for (p,) in admin.execute("SELECT nodeport FROM pg_dist_node WHERE groupid <> 0")]
            for role in _roles_to_drop:
                admin.execute(f"DROP ROLE IF EXISTS {role}")
        for port in ports:
            with psycopg.connect(url_for("postgres", port=port), autocommit=True) as worker:
                for role in _roles_to_drop:
                    worker.execute(f"DROP ROLE IF EXISTS {role}")
        _roles_to_drop.clear()


@pytest.fixture
def synced(flows):
    """A published flow with two entries; returns (tree id, {node id: step id})."""
    tree = flows.create({"steps": [step("a", "Restart the service", commands="systemctl restart app"),
                                   step("b", "Check the logs")]}, name="Ops runbook", is_public=True)
    flows.publish(tree)
    return tree, {r["source_node_id"]: r["id"] for r in flows.library(tree)}


@pytest.fixture(scope="module")
def shared_synced(shared_flows):
    """`synced` on the shared database, for the tests that must change nothing."""
    tree = shared_flows.create({"steps": [step("a", "Restart the service", commands="systemctl restart app"),
                                          step("b", "Check the logs")]}, name="Ops runbook", is_public=True)
    shared_flows.publish(tree)
    return tree, {r["source_node_id"]: r["id"] for r in shared_flows.library(tree)}


@pytest.fixture(scope="module")
def shared_client(shared_cdb) -> str:
    """`client` on the shared database."""
    role = f"stepsync_cp_client_{uuid.uuid4().hex[:8]}"
    _roles_to_drop.append(role)
    shared_cdb.conn.execute(f"CREATE ROLE {role} LOGIN")
    shared_cdb.conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.step_library TO {role}")
    shared_cdb.conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON public.trees TO {role}")
    shared_cdb.conn.execute(f"GRANT SELECT ON public.users, public.accounts TO {role}")
    return url_for(shared_cdb.name, user=role)


UPDATES = [
    ("title = 'Mine now'", "title"),
    ("content = '{}'::jsonb", "content"),
    ("visibility = 'private'", "visibility"),
    ("is_active = false", "is_active"),
    ("source_node_id = 'z'", "source_node_id"),
    ("source_tree_id = NULL", "source_tree_id"),
    ("is_flow_synced = false", "is_flow_synced"),
    ("created_by = NULL, account_id = NULL", "account_id, created_by"),
    ("last_synced_at = now() - interval '1 day'", "last_synced_at"),
    ("usage_count = usage_count + 1, title = 'x'", "title"),
]


@pytest.mark.parametrize("assignment, changed", UPDATES, ids=[u[1] for u in UPDATES])
def test_a_clients_direct_update_of_a_synced_row_is_refused(shared_flows, shared_synced, shared_client, assignment,
                                                            changed):
    flows, client = shared_flows, shared_client
    tree, ids = shared_synced
    before = flows.snapshot()
    with psycopg.connect(client, autocommit=True) as conn:
        error = refused(conn, f"UPDATE step_library SET {assignment} WHERE id = %s", (ids["a"],))
    assert error.sqlstate == "42501"
    assert error.diag.message_primary == f"library step {ids['a']} is managed by flow {tree} and is read-only"
    assert error.diag.message_detail == (
        f"The update changes {changed}; only usage_count, rating and rating_count may change.")
    assert error.diag.message_hint == FORK_HINT
    assert flows.snapshot() == before


def test_a_clients_insert_delete_and_conversion_of_synced_rows_are_refused(flows, synced, client):
    tree, ids = synced
    with psycopg.connect(client, autocommit=True) as conn:
        hand = conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Mine', 'action', '{}')"
                            " RETURNING id").fetchone()[0]
        before = flows.snapshot()
        for columns, values in [
            ("is_flow_synced", "true"),
            ("source_tree_id", f"'{tree}'"),
            ("source_node_id", "'n1'"),
            ("is_flow_synced, source_tree_id, source_node_id, tree_key", f"true, '{tree}', 'n1', '{tree}'"),
        ]:
            error = refused(conn, f"INSERT INTO step_library (title, step_type, content, {columns})"
                                  f" VALUES ('Sneaky', 'action', '{{}}', {values})")
            assert error.sqlstate == "42501"
            assert error.diag.message_primary == "only the sync may create synced library steps"
            assert "stepsync.fork_step" in error.diag.message_hint
        error = refused(conn, "DELETE FROM step_library WHERE id = %s", (ids["a"],))
        assert error.sqlstate == "42501"
        assert error.diag.message_primary == (
            f"library step {ids['a']} is managed by flow {tree} and cannot be deleted while it is active")
        for assignment in ["is_flow_synced = true", f"source_tree_id = '{tree}'", "source_node_id = 'a'"]:
            error = refused(conn, f"UPDATE step_library SET {assignment} WHERE id = %s", (hand,))
            assert error.sqlstate == "42501"
            assert error.diag.message_primary == (
                f"library step {hand} is hand-made and cannot be turned into a synced step")
        assert flows.snapshot() == before


def test_a_clients_truncate_of_the_library_is_refused_42501(flows, synced, client):
    before = flows.snapshot()
    with psycopg.connect(client, autocommit=True) as conn:
        error = refused(conn, "TRUNCATE step_library")
    assert flows.snapshot() == before
    assert (error.sqlstate, error.diag.message_primary) == (
        "42501", "step_library holds steps synced from flows and cannot be truncated")


def test_the_owner_may_truncate_the_library(cdb, flows, synced):
    cdb.conn.execute("TRUNCATE step_library")
    assert cdb.value("SELECT count(*) FROM step_library") == 0


MARKER_STATEMENTS = {
    "update": "UPDATE step_library SET title = 'Forged' WHERE id = %(a)s",
    "update-routed": "UPDATE step_library SET title = 'Forged' WHERE tree_key = %(tree)s AND id = %(a)s",
    "delete": "DELETE FROM step_library WHERE id = %(a)s",
    "insert": "INSERT INTO step_library (tree_key, title, step_type, content, is_flow_synced, source_tree_id,"
              " source_node_id) VALUES (%(tree)s, 'Forged', 'action', '{}', true, %(tree)s, 'x')",
    "set_config-in-where": "UPDATE step_library SET title = 'Forged' WHERE id = %(a)s"
                           " AND set_config('stepsync.sync_writing', 'on', true) = 'on'",
}


@pytest.mark.parametrize("propagate", ["none", "local"])
@pytest.mark.parametrize("statement", list(MARKER_STATEMENTS))
def test_a_marker_forged_on_the_coordinator_never_lets_a_client_write(shared_flows, shared_synced, shared_client,
                                                                     propagate, statement):
    flows, client = shared_flows, shared_client
    tree, ids = shared_synced
    before = flows.snapshot()
    with psycopg.connect(client, autocommit=False) as conn:
        conn.execute(f"SET LOCAL citus.propagate_set_commands = '{propagate}'")
        conn.execute("SET LOCAL stepsync.sync_writing = 'on'")
        error = refused(conn, MARKER_STATEMENTS[statement], {"a": ids["a"], "tree": tree})
        conn.rollback()
    if statement == "set_config-in-where":
        # Citus refuses the statement itself before any worker sees it.
        assert (error.sqlstate, error.diag.message_primary) == (
            "0A000", "functions used in the WHERE/ON/WHEN clause of modification queries on distributed tables"
                     " must not be VOLATILE")
    else:
        assert error.sqlstate == "42501", (error.sqlstate, error.diag.message_primary)
        assert error.diag.message_primary in (
            f"library step {ids['a']} is managed by flow {tree} and is read-only",
            f"library step {ids['a']} is managed by flow {tree} and cannot be deleted while it is active",
            "only the sync may create synced library steps",
            "stepsync.sync_writing is reserved for the sync"), error.diag.message_primary
    assert flows.snapshot() == before


def test_usage_and_ratings_stay_writable_for_a_client(flows, synced, client):
    tree, ids = synced
    with psycopg.connect(client, autocommit=True) as conn:
        conn.execute("UPDATE step_library SET usage_count = usage_count + 2, rating = 3.5, rating_count = 1,"
                     " updated_at = now() WHERE id = %s", (ids["a"],))
        conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE tree_key = %s", (tree,))
        conn.execute(
            "UPDATE step_library SET title = title, step_type = step_type, content = content,"
            " visibility = visibility, created_by = created_by, account_id = account_id, is_active = is_active,"
            " source_tree_id = source_tree_id, source_node_id = source_node_id, is_flow_synced = is_flow_synced,"
            " last_synced_at = last_synced_at, usage_count = usage_count + 1 WHERE source_tree_id = %s", (tree,))
    assert [(r["source_node_id"], r["usage_count"], r["rating"] and str(r["rating"]), r["rating_count"])
            for r in flows.library(tree)] == [("a", 4, "3.50", 1), ("b", 2, None, 0)]
    flows.publish(tree, {"steps": [step("a", "Restart the service, reworded", commands="systemctl restart app"),
                                   step("b", "Check the logs")]})
    assert [(r["source_node_id"], r["title"], r["usage_count"], r["rating"] and str(r["rating"]), r["rating_count"])
            for r in flows.library(tree)] == [("a", "Restart the service, reworded", 4, "3.50", 1),
                                               ("b", "Check the logs", 2, None, 0)]


def test_a_client_that_may_only_update_trees_publishes(cdb, flows):
    role = f"stepsync_cp_pub_{uuid.uuid4().hex[:8]}"
    cdb.conn.execute(f"CREATE ROLE {role} LOGIN")
    _roles_to_drop.append(role)
    cdb.conn.execute(f"GRANT SELECT, UPDATE ON public.trees TO {role}")
    cdb.conn.execute(f"GRANT SELECT ON public.step_library TO {role}")
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    with psycopg.connect(url_for(cdb.name, user=role), autocommit=True) as conn:
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
        assert conn.execute("SELECT count(*) FROM step_library WHERE source_tree_id = %s", (tree,)).fetchone() == (2,)
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s", (Jsonb({"steps": [step("a", "A")]}), tree))
    assert {n: e[4] for n, e in flows.entries(tree).items()} == {"a": True, "b": False}
    cdb.conn.execute(f"REVOKE ALL ON public.trees, public.step_library FROM {role}")


# --- §6.2-§6.6, §6.9: the view, visible_steps, fork_step, sync_tree, check_library ------------------------------------


def test_the_entries_view_has_every_column_and_the_source_flow_name(flows, synced):
    tree, ids = synced
    hand = flows.conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Mine', 'action', '{}')"
                              " RETURNING id").fetchone()[0]
    # Every column of the table but search_vector and (Citus) tree_key, stepsync's and the layout's keys.
    table_columns = [r[0] for r in flows.conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'step_library'::regclass AND attnum > 0"
        " AND NOT attisdropped AND attname NOT IN ('search_vector', 'tree_key') ORDER BY attnum")]
    view_columns = [r[0] for r in flows.conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'step_library_entries'::regclass ORDER BY attnum")]
    assert view_columns == [*table_columns, "source_tree_name"]
    assert flows.conn.execute(
        "SELECT id, source_tree_name FROM step_library_entries ORDER BY source_node_id NULLS LAST").fetchall() == [
        (ids["a"], "Ops runbook"), (ids["b"], "Ops runbook"), (hand, None)]
    with flows.conn.cursor(row_factory=dict_row) as cur:
        entry = cur.execute("SELECT * FROM step_library_entries WHERE id = %s", (ids["a"],)).fetchone()
        table = cur.execute("SELECT * FROM step_library WHERE id = %s", (ids["a"],)).fetchone()
    assert {k: v for k, v in entry.items() if k != "source_tree_name"} == {
        k: v for k, v in table.items() if k not in ("search_vector", "tree_key")}
    flows.conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    assert flows.conn.execute("SELECT source_tree_name FROM step_library_entries WHERE id = %s",
                              (ids["a"],)).fetchone() == (None,)


@pytest.fixture
def people(flows):
    """Steps of every visibility from two accounts (test_library.py's), and who should see what."""
    conn, a = flows.conn, flows.actors
    loner = conn.execute("INSERT INTO users (email) VALUES ('loner@nowhere.test') RETURNING id").fetchone()[0]
    teammate = conn.execute("INSERT INTO users (email, account_id) VALUES ('mate@acme.test', %s) RETURNING id",
                            (a.account,)).fetchone()[0]

    def hand(title, visibility, created_by, account_id, active=True):
        return conn.execute(
            "INSERT INTO step_library (title, step_type, content, visibility, created_by, account_id, is_active)"
            " VALUES (%s, 'action', '{}', %s, %s, %s, %s) RETURNING id",
            (title, visibility, created_by, account_id, active)).fetchone()[0]

    steps = {
        "public": hand("public", "public", a.outsider, a.other_account),
        "acme-team": hand("acme team", "team", a.author, a.account),
        "other-team": hand("other team", "team", a.outsider, a.other_account),
        "author-private": hand("author private", "private", a.author, a.account),
        "loner-private": hand("loner private", "private", loner, None),
        "team-without-account": hand("team without account", "team", a.outsider, None),
        "retired-public": hand("retired public", "public", a.author, a.account, active=False),
    }
    return {"loner": loner, "teammate": teammate, "author": a.author, "outsider": a.outsider}, steps


def visible(conn, user) -> set:
    return {r[0] for r in conn.execute("SELECT title FROM stepsync.visible_steps(%s)", (user,))}


def test_visible_steps_follows_the_rules(flows, people):
    users, _ = people
    team_flow = flows.create({"steps": [step("t", "synced team")]}, status="published", name="Team flow")
    assert flows.library(team_flow)[0]["visibility"] == "team"
    assert visible(flows.conn, users["author"]) == {"public", "acme team", "author private", "synced team"}
    assert visible(flows.conn, users["teammate"]) == {"public", "acme team", "synced team"}
    assert visible(flows.conn, users["outsider"]) == {"public", "other team", "team without account"}
    assert visible(flows.conn, users["loner"]) == {"public", "loner private"}
    assert visible(flows.conn, uuid.uuid4()) == {"public"}
    row = flows.conn.execute("SELECT * FROM stepsync.visible_steps(%s) WHERE title = 'synced team'",
                             (users["teammate"],)).fetchone()
    assert len(row) == 19  # the view's columns
    assert row[-1] == "Team flow"


def test_fork_step_makes_a_private_editable_copy(flows, synced):
    tree, ids = synced
    a = flows.actors
    flows.conn.execute("UPDATE step_library SET usage_count = 12, rating = 4, rating_count = 3 WHERE id = %s",
                       (ids["a"],))
    fork = flows.conn.execute("SELECT stepsync.fork_step(%s, %s)", (ids["a"], a.outsider)).fetchone()[0]
    [original] = flows.library(where=f"id = '{ids['a']}'")
    [copy] = flows.library(where=f"id = '{fork}'")
    assert {k: copy[k] for k in ("title", "step_type", "content")} == {
        k: original[k] for k in ("title", "step_type", "content")}
    assert (copy["visibility"], copy["created_by"], copy["account_id"], copy["forked_from_id"], copy["usage_count"],
            copy["rating"], copy["rating_count"], copy["is_flow_synced"], copy["source_tree_id"],
            copy["source_node_id"], copy["is_active"]) == (
        "private", a.outsider, a.other_account, ids["a"], 0, None, 0, False, None, None, True)
    flows.conn.execute("UPDATE step_library SET title = 'My way', content = '{\"instructions\": \"mine\"}'"
                       " WHERE id = %s", (fork,))
    flows.update(tree, tree_structure={"steps": [step("a", "Changed upstream")]})
    assert flows.library(where=f"id = '{fork}'")[0]["title"] == "My way"
    assert flows.library(where=f"id = '{ids['a']}'")[0]["title"] == "Changed upstream"


def test_fork_step_refuses_the_invisible_the_retired_and_the_unknown_alike(flows, people):
    users, steps = people
    conn = flows.conn
    before = flows.snapshot()
    cases = [
        (steps["author-private"], users["teammate"]),
        (steps["other-team"], users["author"]),
        (steps["retired-public"], users["author"]),
        (uuid.uuid4(), users["author"]),
        (steps["public"], uuid.uuid4()),
    ]
    for step_id, user in cases:
        error = refused(conn, "SELECT stepsync.fork_step(%s, %s)", (step_id, user))
        assert error.sqlstate == "P0002"
        assert error.diag.message_primary == f"step {step_id} cannot be forked by user {user}"
        assert error.diag.message_detail == ("The step does not exist, is retired or is not visible to the user,"
                                             " or the user does not exist.")
    assert flows.snapshot() == before
    assert conn.execute("SELECT stepsync.fork_step(%s, %s)", (steps["loner-private"], users["loner"])).fetchone()[0]


def test_sync_tree_repairs_and_reports_rows_written(cdb, flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    with sync_triggers_off(cdb.conn):
        flows.publish(tree)
    assert flows.library(tree) == []
    assert oracle(cdb.conn) == [("missing", tree, "a"), ("missing", tree, "b")]
    assert cdb.value("SELECT stepsync_citus.sync_tree(%s)", (tree,)) == 2
    assert set(flows.entries(tree)) == {"a", "b"}
    assert cdb.value("SELECT stepsync_citus.sync_tree(%s)", (tree,)) == 0
    with sync_triggers_off(cdb.conn):
        flows.update(tree, is_active=False)
    assert cdb.value("SELECT stepsync_citus.sync_tree(%s)", (tree,)) == 2
    assert [e[4] for e in flows.entries(tree).values()] == [False, False]
    assert cdb.value("SELECT stepsync_citus.sync_tree(%s)", (tree,)) == 0
    # Inside a transaction block too (force_delegation).
    with sync_triggers_off(cdb.conn):
        flows.update(tree, is_active=True)
    with cdb.connect(autocommit=False) as conn:
        assert conn.execute("SELECT stepsync_citus.sync_tree(%s)", (tree,)).fetchone() == (2,)
        conn.commit()
    assert oracle(cdb.conn) == []


def test_sync_tree_of_a_draft_and_of_an_unknown_flow(cdb, flows):
    tree = flows.create({"steps": [step("a", "A")]})
    assert cdb.value("SELECT stepsync_citus.sync_tree(%s)", (tree,)) == 0
    assert flows.library() == []
    error = refused(cdb.conn, "SELECT stepsync_citus.sync_tree('00000000-0000-0000-0000-000000000000')")
    assert error.sqlstate == "P0002"
    assert error.diag.message_primary == "no flow with id 00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("sql", [
    "SELECT stepsync.sync_tree('{tree}')",
    "SELECT 1, stepsync.sync_tree('{tree}')",
    "DO $$BEGIN PERFORM stepsync.sync_tree('{tree}'); END$$",
])
def test_sync_tree_called_otherwise_on_the_coordinator_is_0a000(cdb, flows, sql):
    tree = flows.create({"steps": [step("a", "A")]}, status="published")
    before = flows.snapshot()
    error = refused(cdb.conn, sql.format(tree=tree))
    assert error.sqlstate == "0A000"
    assert error.diag.message_primary == ON_COORDINATOR
    assert error.diag.message_hint == (
        "Run `stepsync resync TREE_ID`, or, as the tables' owner, SELECT stepsync_citus.sync_tree('...') as a"
        " statement of its own: Citus runs it on that worker.")
    assert flows.snapshot() == before


def test_the_sync_works_on_the_flows_shard_and_refuses_on_any_other_node(cdb, flows):
    """stepsync._flow_shard (§11.3): on the worker that holds the flow, the shard of step_library with its
    tree_key, where the sync's statements run; on the other worker and on the coordinator the sync refuses,
    0A000, before it writes anything (its marker would not reach the shard's guards there)."""
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    shard = cdb.value("SELECT get_shard_id_for_distribution_column('public.step_library', %s)", (tree,))
    holder = cdb.value("SELECT n.nodeport FROM pg_dist_placement AS p JOIN pg_dist_node AS n USING (groupid)"
                       " WHERE p.shardid = %s", (shard,))
    (other,) = {p for _, p in all_workers(cdb.conn)} - {holder}
    with psycopg.connect(url_for(cdb.name, port=holder), autocommit=True) as worker:
        assert worker.execute("SELECT stepsync._flow_shard(%s)", (tree,)).fetchone() == (
            f"public.step_library_{shard}",)
        assert worker.execute(f"SELECT count(*) FROM public.step_library_{shard} WHERE tree_key = %s",
                              (tree,)).fetchone() == (2,)
    edited = {"steps": [step("a", "A2"), step("c", "C")]}
    with sync_triggers_off(cdb.conn):
        flows.update(tree, tree_structure=edited)
    before = flows.snapshot()
    message = f"stepsync: on Citus the sync of flow {tree} runs on the worker that holds its shard, not on this node"
    with psycopg.connect(url_for(cdb.name, port=other), autocommit=True) as worker:
        error = refused(worker, "SELECT stepsync._sync(%s, 'procedural', %s::jsonb, false, %s, %s)",
                        (tree, json.dumps(edited), flows.actors.account, flows.actors.author))
    assert (error.sqlstate, error.diag.message_primary) == ("0A000", message)
    assert error.diag.message_hint == (
        "Run `stepsync resync TREE_ID`, or, as the tables' owner, SELECT stepsync_citus.sync_tree('...') as a"
        " statement of its own: Citus runs it on that worker.")
    with cdb.connect() as conn:   # the coordinator holds no placement either
        error = refused(conn, "SELECT stepsync._flow_shard(%s)", (tree,))
    assert (error.sqlstate, error.diag.message_primary) == ("0A000", message)
    assert flows.snapshot() == before
    assert cdb.value("SELECT stepsync_citus.sync_tree(%s)", (tree,)) == 3   # a rewritten, c new, b retired
    assert {n: (e[0], e[4]) for n, e in flows.entries(tree).items()} == {
        "a": ("A2", True), "b": ("B", False), "c": ("C", True)}
    assert oracle(cdb.conn) == []


def test_the_delegated_sync_tree_inside_a_query_over_trees_is_refused_by_citus(cdb, flows):
    """docs/contract.md §11.4: pushed down into the shard's query, the call may not reach another query: Citus's
    own XX000, and nothing changes."""
    tree = flows.create({"steps": [step("a", "A")]}, status="published")
    before = flows.snapshot()
    error = refused(cdb.conn, "SELECT stepsync_citus.sync_tree(id) FROM trees WHERE id = %s", (tree,))
    assert (error.sqlstate, error.diag.message_primary) == (
        "XX000", "cannot execute a distributed query from a query on a shard")
    assert flows.snapshot() == before


def test_a_client_cannot_name_the_delegated_function(cdb, flows, client):
    """Citus 13.2.2 crashes the coordinator when any role plans this form of a call of a distributed function
    (docs/contract.md §11.4): a client must not be able to name stepsync's. Refused at parse time, 42501, and
    the coordinator keeps every session."""
    tree = flows.create({"steps": [step("a", "A")]}, status="published")
    with psycopg.connect(client, autocommit=True) as conn:
        for sql in ("SELECT stepsync_citus.sync_tree(x) FROM (VALUES (%s::uuid)) AS v (x)",
                    "SELECT stepsync_citus.sync_tree(%s)"):
            error = refused(conn, sql, (tree,))
            assert (error.sqlstate, error.diag.message_primary) == (
                "42501", "permission denied for schema stepsync_citus")
    assert cdb.value("SELECT 1") == 1   # the owner's session survived


def stale_library(flows, sync_off_conn) -> uuid.UUID:
    """A listed flow whose structure was changed behind the sync's back (test_cli_ops.py's check case)."""
    tree = flows.create({"steps": [header("Network"), step("a", "Restart the router", description="Power cycle it"),
                                   step("b", "Check the cable")]}, status="published", name="Listed")
    with sync_triggers_off(sync_off_conn):
        flows.update(tree, tree_structure={"steps": [step("a", "Restart the router")]})
    return tree


def test_check_library_finds_what_one_node_finds(cdb, flows, db):
    assert oracle(cdb.conn) == []
    citus_tree = stale_library(flows, cdb.conn)
    single = Flows(db.conn)
    single_tree = single.create({"steps": [header("Network"), step("a", "Restart the router",
                                                                    description="Power cycle it"),
                                           step("b", "Check the cable")]}, status="published", name="Listed")
    with db.connect(autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s",
                     (Jsonb({"steps": [step("a", "Restart the router")]}), single_tree))
        conn.commit()
    found = oracle(cdb.conn)
    assert found == [("missing", citus_tree, "a"), ("unexpected", citus_tree, "a"), ("unexpected", citus_tree, "b")]
    assert [(d, n) for d, _, n in found] == [(d, n) for d, _, n in oracle(db.conn)]
    before = flows.snapshot()
    oracle(cdb.conn)
    assert flows.snapshot() == before     # it changes nothing
    assert cdb.value("SELECT stepsync_citus.sync_tree(%s)", (citus_tree,)) == 2
    assert oracle(cdb.conn) == []


# --- §6.8: search_steps, and the same rows in the same order as on one node -------------------------------------------


def test_search_ranks_tiers_filters_and_visibility(flows):
    a = flows.actors
    web = flows.create({"steps": [
        {"id": "hdr", "type": "section_header", "title": "Networking"},
        step("r1", "Restart nginx", description="Reload the web server configuration",
             commands=[{"code": "systemctl restart nginx", "language": "bash"}]),
        step("r2", "Check disk space", description="Before you restart anything", commands="df -h"),
        step("r3", "Flush DNS cache", expected_outcome="Names resolve after the restart"),
        step("r4", "Look around", description="Then go on"),
    ]}, name="Web runbook", is_public=True)
    secret = flows.create({"steps": [step("p1", "Restart the secret service")]}, name="Secret",
                          account=a.account, is_public=False)
    flows.publish(web)
    flows.publish(secret)
    conn = flows.conn

    def search(user, query, **kw):
        args = "".join(f", p_{k} => %({k})s" for k in kw)
        return conn.execute(f"SELECT id, round(rank::numeric, 1)::float8, complete"
                            f" FROM stepsync.search_steps(%(user)s, %(query)s{args})",
                            {"user": user, "query": query, **kw}).fetchall()

    rows = conn.execute("SELECT source_node_id, source_tree_name, round(rank::numeric, 1)::float8, complete"
                        " FROM stepsync.search_steps(%s, 'restart')", (a.outsider,)).fetchall()
    assert rows == [("r1", "Web runbook", 1.0, True), ("r2", "Web runbook", 0.2, True),
                    ("r3", "Web runbook", 0.1, True)]
    assert {r[0] for r in conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'restart')",
                                       (a.author,))} == {"r1", "r2", "r3", "p1"}
    assert conn.execute("SELECT source_node_id, round(rank::numeric, 1)::float8"
                        " FROM stepsync.search_steps(%s, 'networking') ORDER BY source_node_id",
                        (a.outsider,)).fetchall() == [("r1", 0.4), ("r2", 0.4), ("r3", 0.4), ("r4", 0.4)]
    assert conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'systemctl')",
                        (a.outsider,)).fetchall() == [("r1",)]
    assert conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, '\"web server\" -disk')",
                        (a.outsider,)).fetchall() == [("r1",)]
    assert sorted(conn.execute("SELECT source_node_id, round(rank::numeric, 1)::float8"
                               " FROM stepsync.search_steps(%s, 'nginx or dns')", (a.outsider,)).fetchall()) == [
        ("r1", 1.0), ("r3", 1.0)]
    assert conn.execute(
        "SELECT source_node_id FROM stepsync.search_steps(%s, 'restart', p_group_label => 'Networking',"
        " p_source_tree_id => %s, p_step_type => 'action', p_limit => 2)", (a.author, web)).fetchall() == [
        ("r1",), ("r2",)]
    assert search(a.author, "restart", step_type="solution") == []
    assert search(a.author, "restart", limit=0) == []
    assert len(search(a.author, "restart", limit=None)) == 4
    for empty in ("", "   ", "the and of", "!!!", None):
        assert search(a.author, empty) == []
    error = refused(conn, "SELECT * FROM stepsync.search_steps(%s, 'restart', p_limit => -1)", (a.author,))
    assert error.sqlstate == "2201W"
    flows.update(web, is_active=False)
    assert [r[0] for r in conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'restart')",
                                       (a.author,))] == ["p1"]
    assert search(uuid.uuid4(), "secret") == [] and search(None, "secret") == []


ACCOUNT = uuid.UUID("a0000000-0000-4000-8000-000000000001")
OTHER_ACCOUNT = uuid.UUID("a0000000-0000-4000-8000-000000000002")
AUTHOR = uuid.UUID("b0000000-0000-4000-8000-000000000001")
OUTSIDER = uuid.UUID("b0000000-0000-4000-8000-000000000002")
LONER = uuid.UUID("b0000000-0000-4000-8000-000000000003")


def build_search_library(conn) -> None:
    """The same library on any database: the example flows and a web runbook (fixed flow ids, every
    synced entry a distinct usage count), hand-made steps of every visibility, and 260 hand-made
    "restart" steps (more than search_steps ranks exactly) with fixed ids."""
    conn.execute("INSERT INTO accounts (id, name) VALUES (%s, 'Acme'), (%s, 'Other')", (ACCOUNT, OTHER_ACCOUNT))
    conn.execute("INSERT INTO users (id, email, account_id) VALUES (%s, 'author@acme.test', %s),"
                 " (%s, 'someone@other.test', %s), (%s, 'loner@nowhere.test', NULL)",
                 (AUTHOR, ACCOUNT, OUTSIDER, OTHER_ACCOUNT, LONER))
    flows = []
    for i, path in enumerate(sorted((REPO / "tools" / "examples").glob("*.json"))):
        flow = json.loads(path.read_text(encoding="utf-8"))
        flows.append((uuid.UUID(f"c0000000-0000-4000-8000-00000000000{i}"), flow["name"], flow["tree_type"],
                      flow["tree_structure"], flow["is_public"] if i != 1 else False))
    flows.append((uuid.UUID("c0000000-0000-4000-8000-000000000009"), "Web runbook", "procedural", {"steps": [
        header("Networking"),
        step("r1", "Restart nginx", description="Reload the web server configuration",
             commands=[{"code": "systemctl restart nginx", "language": "bash"}]),
        step("r2", "Check disk space", description="Before you restart anything", commands="df -h"),
        step("r3", "Flush DNS cache", expected_outcome="Names resolve after the restart"),
        step("r4", "Restart the router", description="Power cycle it", library_visibility="team"),
    ]}, True))
    for tree_id, name, tree_type, structure, is_public in flows:
        conn.execute("INSERT INTO trees (id, name, tree_type, tree_structure, status, is_public, account_id,"
                     " author_id) VALUES (%s, %s, %s, %s, 'published', %s, %s, %s)",
                     (tree_id, name, tree_type, Jsonb(structure), is_public, ACCOUNT, AUTHOR))
    synced = conn.execute("SELECT source_tree_id, source_node_id FROM step_library ORDER BY 1, 2").fetchall()
    for n, (tree_id, node) in enumerate(synced):
        conn.execute("UPDATE step_library SET usage_count = %s, rating = %s WHERE source_tree_id = %s"
                     " AND source_node_id = %s", ((n * 37) % 101 + n // 101, None if n % 3 else (n % 50) / 10,
                                                  tree_id, node))
    for i, (visibility, created_by, account_id) in enumerate([
            ("public", OUTSIDER, OTHER_ACCOUNT), ("team", AUTHOR, ACCOUNT), ("team", OUTSIDER, OTHER_ACCOUNT),
            ("private", AUTHOR, ACCOUNT), ("private", LONER, None)]):
        conn.execute("INSERT INTO step_library (id, title, step_type, content, visibility, created_by, account_id,"
                     " usage_count) VALUES (%s, %s, 'action', %s, %s, %s, %s, %s)",
                     (uuid.UUID(f"d0000000-0000-4000-8000-00000000000{i}"), f"Reset the access point {visibility}",
                      Jsonb(content(f"Hold the reset button ({visibility})")), visibility, created_by, account_id,
                      500 + i))
    conn.execute("INSERT INTO step_library (id, title, step_type, content, visibility, usage_count, rating)"
                 " SELECT md5('restart' || i)::uuid, 'Deploy ' || i, CASE WHEN i % 4 = 0 THEN 'solution'"
                 " ELSE 'action' END, jsonb_build_object('instructions', 'restart the service ' || i,"
                 " 'help_text', NULL, 'commands', '[]'::jsonb, 'group_label', NULL), 'public', i * 3 % 257,"
                 " CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 6)::numeric END"
                 " FROM generate_series(1, 260) AS i")


SEARCHES = [
    (OUTSIDER, "restart", {}),
    (AUTHOR, "restart", {}),
    (AUTHOR, "restart", {"limit": 300}),
    (AUTHOR, "restart", {"step_type": "solution", "limit": 50}),
    (LONER, "restart service", {"limit": 40}),
    (AUTHOR, "restart -service", {}),
    (AUTHOR, "\"web server\"", {}),
    (AUTHOR, "nginx or dns or router", {}),
    (OUTSIDER, "router", {}),
    (AUTHOR, "networking", {"group_label": "Networking"}),
    (AUTHOR, "restart", {"source_tree_id": uuid.UUID("c0000000-0000-4000-8000-000000000009")}),
    (AUTHOR, "reset", {}),
    (OUTSIDER, "reset", {}),
    (LONER, "reset", {}),
    (None, "reset", {}),
    (AUTHOR, "wifi", {}),
    (AUTHOR, "check", {"limit": 100}),
    (OUTSIDER, "database", {}),
    (AUTHOR, "filter", {}),
    (AUTHOR, "the and of", {}),
    (AUTHOR, "", {}),
]


def run_searches(conn) -> list[list[tuple]]:
    results = []
    for user, query, kw in SEARCHES:
        args = "".join(f", p_{k} => %({k})s" for k in kw)
        results.append(conn.execute(
            f"SELECT coalesce(source_tree_id::text || '/' || source_node_id, id::text), title, step_type,"
            f" usage_count, rating, rank, complete FROM stepsync.search_steps(%(user)s, %(query)s{args})",
            {"user": user, "query": query, **kw}).fetchall())
    return results


def test_search_steps_gives_the_same_rows_in_the_same_order_as_one_node(cdb, db):
    build_search_library(cdb.conn)
    build_search_library(db.conn)
    assert cdb.value("SELECT count(*) FROM step_library") == db.value("SELECT count(*) FROM step_library") == 353
    on_citus, on_one_node = run_searches(cdb.conn), run_searches(db.conn)
    for (user, query, kw), got, expected in zip(SEARCHES, on_citus, on_one_node, strict=True):
        assert got == expected, (user, query, kw)
    # The set exercises both ways through the function: exact, and a bounded candidate set.
    assert any(rows and rows[0][-1] is False for rows in on_one_node)
    assert any(rows and rows[0][-1] is True for rows in on_one_node)
    assert sum(map(len, on_one_node)) >= 500


def remote_commands(conn, sql: str, params=None) -> list[str]:
    """The commands the coordinator sends to the workers (or runs on its own shards) for SQL."""
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    conn.execute("SET citus.log_remote_commands = on")
    conn.execute("SET citus.log_local_commands = on")
    try:
        conn.execute(sql, params).fetchall()
    finally:
        conn.execute("RESET citus.log_remote_commands")
        conn.execute("RESET citus.log_local_commands")
    return [n for n in notices if n.startswith(("issuing", "executing the command locally"))
            and not n.startswith(("issuing BEGIN", "issuing COMMIT", "issuing PREPARE TRANSACTION",
                                  "issuing COMMIT PREPARED", "issuing SELECT assign_distributed_transaction_id"))]


def test_a_search_asks_each_worker_once(cdb, client):
    """docs/contract.md §11.4: the walk runs on every worker over its own shards, one command a worker, which
    also reads the rows of the worker's best matches; no statement goes to the shards one by one. With
    row-level security on step_library the rows are read apart, with the caller's rights: one more command a
    worker."""
    build_search_library(cdb.conn)
    workers = cdb.value("SELECT count(DISTINCT p.groupid) FROM pg_dist_placement AS p JOIN pg_dist_shard AS s"
                        " USING (shardid) WHERE s.logicalrelid = 'public.step_library'::regclass")
    assert workers == 2
    searches = ((AUTHOR, "restart"), (OUTSIDER, "router"), (LONER, "reset"))
    for user, query in searches:
        commands = remote_commands(cdb.conn, "SELECT * FROM stepsync.search_steps(%s, %s)", (user, query))
        walks = [c for c in commands if "stepsync._search_local(" in c]
        reads = [c for c in commands if "stepsync._search_rows(" in c]
        assert (len(walks), len(reads)) == (workers, 0), commands
        assert not [c for c in commands if "step_library_" in c], commands   # no statement on a shard
    sql = "SELECT id, rank, complete FROM stepsync.search_steps(%s, %s)"
    expected = {q: cdb.rows(sql, (u, q)) for u, q in searches}
    assert all(expected.values())
    with psycopg.connect(client, autocommit=True) as conn:   # not the owner, the same rows
        for user, query in searches:
            assert conn.execute(sql, (user, query)).fetchall() == expected[query]
    cdb.conn.execute("ALTER TABLE public.step_library ENABLE ROW LEVEL SECURITY")
    cdb.conn.execute("CREATE POLICY everything ON public.step_library USING (true)")
    for user, query in searches:
        commands = remote_commands(cdb.conn, "SELECT * FROM stepsync.search_steps(%s, %s)", (user, query))
        walks = [c for c in commands if "stepsync._search_local(" in c]
        reads = [c for c in commands if "stepsync._search_rows(" in c]
        assert (len(walks), len(reads)) == (workers, workers), commands
        assert cdb.rows(sql, (user, query)) == expected[query]


def test_rows_a_worker_did_not_read_with_its_walk_are_read_after_it(cdb):
    """docs/contract.md §11.4: a worker reads with its walk the rows of its best matches, as many as its
    share of the limit and two standard deviations more (15 of 20 with two workers); when one worker holds
    more of the final rows (here all 25 matches are one flow's, on one worker), search_steps reads the
    rest after the walk, with the caller's rights (one more command a worker): the same rows, in order."""
    build_search_library(cdb.conn)
    flow_key = uuid.UUID("e0000000-0000-4000-8000-000000000001")
    cdb.conn.execute("INSERT INTO step_library (id, tree_key, title, step_type, content, visibility, usage_count)"
                     " SELECT md5('zebra' || i)::uuid, %s, 'Feed the zebra ' || i, 'action',"
                     " jsonb_build_object('instructions', 'zebra crossing ' || i), 'public', 1000 + i"
                     " FROM generate_series(1, 25) AS i", (flow_key,))
    expected = cdb.rows("SELECT id, title, content, usage_count FROM step_library WHERE title LIKE 'Feed the zebra %%'"
                        " ORDER BY usage_count DESC LIMIT 20")
    assert [r[3] for r in expected] == list(range(1025, 1005, -1))
    read = cdb.rows("SELECT (r.found).id IS NOT NULL, count(*) FROM stepsync._search_ranked(%s, 'zebra', NULL, NULL,"
                    " NULL, 20) AS r GROUP BY 1 ORDER BY 1", (AUTHOR,))
    assert read == [(False, 5), (True, 15)]   # the worker read its best 15 with the walk
    sql = "SELECT id, title, content, usage_count FROM stepsync.search_steps(%s, 'zebra')"
    commands = remote_commands(cdb.conn, sql, (AUTHOR,))
    walks = [c for c in commands if "stepsync._search_local(" in c]
    reads = [c for c in commands if "stepsync._search_rows(" in c]
    assert (len(walks), len(reads)) == (2, 2), commands
    assert cdb.rows(sql, (AUTHOR,)) == expected
    # A limit of 4: each worker reads 2 and 2 more (two standard deviations), so no read after the walk.
    commands = remote_commands(cdb.conn, "SELECT id FROM stepsync.search_steps(%s, 'zebra', p_limit => 4)",
                               (AUTHOR,))
    assert [c for c in commands if "stepsync._search_rows(" in c] == [], commands
    assert cdb.rows("SELECT id FROM stepsync.search_steps(%s, 'zebra', p_limit => 4)", (AUTHOR,)) == [
        (r[0],) for r in expected[:4]]


def test_search_by_a_role_that_may_not_read_the_flows_names_is_refused_as_on_one_node(cdb, db):
    """The rows of a search are read with the caller's rights (docs/contract.md §6.8): a role that may read
    step_library but not trees (the flow's name) is refused, 42501, on Citus as on one node; the workers never
    read the rows for it as the owner."""
    build_search_library(cdb.conn)
    build_search_library(db.conn)
    sql = "SELECT id FROM stepsync.search_steps(%s, 'restart')"
    for conn in (cdb.conn, db.conn):
        role = f"stepsync_cp_noflows_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE ROLE {role} LOGIN")   # Citus reaches the workers as the role: it must log in
        if conn is cdb.conn:
            _roles_to_drop.append(role)
        for table in ("step_library", "users", "accounts"):   # one at a time: Citus refuses several after parallel DDL
            conn.execute(f"GRANT SELECT ON public.{table} TO {role}")
        conn.execute(f"GRANT SELECT (id) ON public.trees TO {role}")
        with pytest.raises(psycopg.Error) as info, conn.transaction():
            conn.execute(f"SET LOCAL ROLE {role}")
            conn.execute(sql, (AUTHOR,))
        # On Citus the worker names the shard it was refused (trees_<shard id>).
        assert info.value.sqlstate == "42501"
        assert re.fullmatch(r"permission denied for table trees(_[0-9]+)?", info.value.diag.message_primary or "")
        if conn is db.conn:
            conn.execute(f"REVOKE ALL ON public.step_library, public.users, public.accounts, public.trees FROM {role}")
            conn.execute(f"DROP ROLE {role}")


def test_search_without_its_anchors_gives_the_same_rows_through_the_coordinator(cdb):
    """Anchors gone (stepsync.search_anchors emptied by hand): search walks the distributed table from the
    coordinator and reads the rows through it, the same rows in the same order;
    stepsync.refresh_search_statistics() puts the anchors back."""
    build_search_library(cdb.conn)
    with_anchors = run_searches(cdb.conn)
    cdb.conn.execute("DELETE FROM stepsync.search_anchors")
    assert run_searches(cdb.conn) == with_anchors
    commands = remote_commands(cdb.conn, "SELECT * FROM stepsync.search_steps(%s, 'restart')", (AUTHOR,))
    # The anchors' query finds no row on the workers, so the walk and the read go through the distributed tables.
    assert [c for c in commands if "step_library_" in c and "stepsync._search_" not in c], commands
    doctor = run(cdb.url, "doctor", "--json")
    assert doctor.returncode == 1, doctor.stderr
    assert [(f["check"], f["object"], f["message"]) for f in json.loads(doctor.stdout)["findings"]] == [
        ("search", "stepsync.search_anchors",
         "stepsync.search_anchors lacks the rows through which search reaches 2 of the 2 nodes that hold the"
         " library: search goes through the distributed tables there (the same rows, slower): run SELECT"
         " stepsync.refresh_search_statistics() as the tables' owner")]
    cdb.conn.execute("SELECT stepsync.refresh_search_statistics()")
    assert cdb.value("SELECT count(*) FROM stepsync.search_anchors") == 4096
    assert run_searches(cdb.conn) == with_anchors
    doctor = run(cdb.url, "doctor")
    assert doctor.returncode == 0 and doctor.stdout.strip().splitlines()[-1].startswith("no findings"), doctor.stdout


def test_search_keeps_its_anchors_and_finds_them_again_when_they_no_longer_hold(cdb):
    """stepsync.refresh_search_statistics() keeps the anchors (search_sample_size.anchors), one key a worker;
    stepsync._search_anchors() returns them while they hold, and finds them again, the same keys, when the
    kept ones reach a worker twice, miss one, are empty or gone; every search gives the same rows either way.
    A role with no grant on stepsync's tables gets them too (search_steps calls it with its caller's rights)."""
    build_search_library(cdb.conn)
    cdb.conn.execute("SELECT stepsync.refresh_search_statistics()")
    kept = cdb.value("SELECT anchors FROM stepsync.search_sample_size")
    assert kept == cdb.value("SELECT stepsync._search_anchors()")
    assert len(kept) == 2
    group_of = ("SELECT p.groupid FROM pg_dist_placement AS p"
                " WHERE p.shardid = get_shard_id_for_distribution_column('public.step_library', %s::uuid)")
    assert {cdb.value(group_of, (str(k),)) for k in kept} == {
        g for (g,) in cdb.rows("SELECT groupid FROM pg_dist_node WHERE groupid <> 0")}
    with_kept = run_searches(cdb.conn)
    # Two keys on one worker: the first anchor and the next key of the same shard's worker.
    first_group = cdb.value(group_of, (str(kept[0]),))
    twice = cdb.value(
        "SELECT k.key FROM generate_series(1, 4095) AS n, LATERAL (SELECT stepsync._search_anchor(n) AS key) AS k"
        " WHERE (SELECT p.groupid FROM pg_dist_placement AS p WHERE p.shardid ="
        "        get_shard_id_for_distribution_column('public.step_library', k.key)) = %s"
        "   AND k.key <> %s ORDER BY n LIMIT 1", (first_group, kept[0]))
    for wrong in ([kept[0], twice], [kept[0]], [], None):
        cdb.conn.execute("UPDATE stepsync.search_sample_size SET anchors = %s", (wrong,))
        assert cdb.value("SELECT stepsync._search_anchors()") == kept, wrong
        assert run_searches(cdb.conn) == with_kept, wrong
    cdb.conn.execute("SELECT stepsync._search_statistics_keep()")
    assert cdb.value("SELECT anchors FROM stepsync.search_sample_size") == kept
    role = f"stepsync_cp_anchors_{uuid.uuid4().hex[:8]}"
    cdb.conn.execute(f"CREATE ROLE {role} LOGIN")
    _roles_to_drop.append(role)
    with cdb.conn.transaction():
        cdb.conn.execute(f"SET LOCAL ROLE {role}")
        assert cdb.value("SELECT has_table_privilege('stepsync.search_sample_size', 'SELECT')") is False
        assert cdb.value("SELECT stepsync._search_anchors()") == kept
        cdb.conn.execute("RESET ROLE")


def test_search_checks_its_kept_anchors_by_the_workers_answers(cdb):
    """stepsync_0012: a search takes the kept anchors unchecked; each worker's answer names its node and the
    shards it walked, and when the kept keys reach a worker twice, miss one, or are none, the search finds
    them again (stepsync._search_anchors) and the workers walk again: the same rows, one more walk, and
    stepsync doctor says so until stepsync.refresh_search_statistics() keeps good ones."""
    build_search_library(cdb.conn)
    cdb.conn.execute("SELECT stepsync.refresh_search_statistics()")
    kept = cdb.value("SELECT anchors FROM stepsync.search_sample_size")
    with_kept = run_searches(cdb.conn)
    sql = "SELECT * FROM stepsync.search_steps(%s, 'reset')"

    def walks() -> int:
        return len([c for c in remote_commands(cdb.conn, sql, (AUTHOR,)) if "stepsync._search_local(" in c])

    def findings() -> list[tuple]:
        doctor = run(cdb.url, "doctor", "--json")
        return [(f["check"], f["object"], f["message"]) for f in json.loads(doctor.stdout)["findings"]]

    assert walks() == 2 and findings() == []
    group_of = ("SELECT p.groupid FROM pg_dist_placement AS p"
                " WHERE p.shardid = get_shard_id_for_distribution_column('public.step_library', %s::uuid)")
    first_group = cdb.value(group_of, (str(kept[0]),))
    twice = cdb.value(
        "SELECT k.key FROM generate_series(1, 4095) AS n, LATERAL (SELECT stepsync._search_anchor(n) AS key) AS k"
        " WHERE (SELECT p.groupid FROM pg_dist_placement AS p WHERE p.shardid ="
        "        get_shard_id_for_distribution_column('public.step_library', k.key)) = %s"
        "   AND k.key <> %s ORDER BY n LIMIT 1", (first_group, kept[0]))
    stale = ("search", "stepsync.search_sample_size",
             "the anchors kept in stepsync.search_sample_size no longer reach each node that holds the library"
             " once (a shard moved or split, or a node added, since they were kept): every search finds them"
             " again and walks twice (the same rows, slower): run SELECT stepsync.refresh_search_statistics()"
             " as the tables' owner")
    none_kept = ("search", "stepsync.search_sample_size",
                 "no anchors are kept in stepsync.search_sample_size: every search finds them first (the same rows,"
                 " slower): run SELECT stepsync.refresh_search_statistics() as the tables' owner")
    # Two keys on one worker (both walk there: 2, then 2 again); one key (1, then 2); none kept (found first: 2).
    for wrong, expected_walks, expected_findings in (([kept[0], twice], 4, [stale]), ([kept[0]], 3, [stale]),
                                                     ([], 2, [none_kept]), (None, 2, [none_kept])):
        cdb.conn.execute("UPDATE stepsync.search_sample_size SET anchors = %s", (wrong,))
        assert run_searches(cdb.conn) == with_kept, wrong
        assert walks() == expected_walks, wrong
        assert findings() == expected_findings, wrong
    cdb.conn.execute("SELECT stepsync.refresh_search_statistics()")
    assert cdb.value("SELECT anchors FROM stepsync.search_sample_size") == kept
    assert walks() == 2 and findings() == []


def test_a_rare_words_rows_are_read_in_the_walks_own_scan(cdb):
    """stepsync_0012: when one scan finds every match (a rare word's way, path A), the walk on a worker reads
    the rows of its best matches in that same statement, made as stepsync._search_row_sql says: the same
    rows, the same text, as stepsync._search_read reads by their keys. A walk by class (path B) reads none:
    stepsync._search_local then reads them after it."""
    build_search_library(cdb.conn)
    port = cdb.value("SELECT min(nodeport) FROM pg_dist_node WHERE groupid <> 0")
    with psycopg.connect(url_for(cdb.name, port=port), autocommit=True) as worker:
        shards = worker.execute(
            "SELECT array_agg(format('public.%I', 'step_library_' || s.shardid)::regclass ORDER BY s.shardid),"
            "       array_agg(format('public.%I', 'trees_' || t.shardid)::regclass ORDER BY s.shardid)"
            "  FROM pg_dist_shard AS s JOIN pg_dist_placement AS p ON p.shardid = s.shardid"
            "  JOIN pg_dist_shard AS t ON t.logicalrelid = 'public.trees'::regclass"
            "   AND t.shardminvalue = s.shardminvalue"
            " WHERE s.logicalrelid = 'public.step_library'::regclass"
            "   AND p.groupid = (SELECT groupid FROM pg_dist_local_group)").fetchone()
        request = ("ROW(%(user)s, %(account)s, 'restart'::tsquery, 'restart:A'::tsquery, 'restart:AB'::tsquery,"
                   " 'restart:ABC'::tsquery, NULL, NULL, NULL, 200, false, NULL, NULL, NULL, NULL, 353,"
                   " %(estimate)s, NULL, NULL, NULL)::stepsync.search_request")
        walk = ("SELECT (g).found_ids, (g).found_rows, ((g).walk).ids, ((g).walk).tree_keys, ((g).walk).all_matches,"
                " ((g).walk).tiers, ((g).walk).usage_counts, ((g).walk).ratings"
                f" FROM (SELECT stepsync._search_walk(%(shards)s, {request}, true, 15, %(trees)s) AS g) AS x")
        params = {"user": AUTHOR, "account": ACCOUNT, "shards": shards[0], "trees": shards[1], "estimate": None}
        found_ids, found_rows, ids, keys, all_matches, tiers, usage, ratings = worker.execute(walk, params).fetchone()
        assert all_matches and len(ids) > 15 and len(found_ids) == 15
        read = worker.execute("SELECT found_id, found_row FROM stepsync._search_read(%s, %s, true)",
                              ([keys[ids.index(i)] for i in found_ids], found_ids)).fetchall()
        assert sorted(read) == sorted(zip(found_ids, found_rows, strict=True))
        # The rows of this worker's best 15 matches in the search's order (tier, usage_count, rating, id).
        order = sorted(zip(ids, tiers, usage, ratings, strict=True),
                       key=lambda m: (-m[1], -m[2], m[3] is None, -(m[3] or 0), m[0]))
        assert set(found_ids) == {m[0] for m in order[:15]}
        params["estimate"] = 1000000   # the walk by class
        found_ids, found_rows, ids = worker.execute(walk, params).fetchone()[:3]
        assert (found_ids, found_rows) == (None, None) and ids


def test_search_walks_again_when_the_first_round_falls_short(cdb, db):
    """Every match on one worker's shards: that worker's first round stops at its share of T, the other has
    none, and together they have no more than T; the second round walks with T itself. The rows are those
    of one node."""
    for conn in (cdb.conn, db.conn):
        conn.execute("INSERT INTO accounts (id, name) VALUES (%s, 'Acme')", (ACCOUNT,))
        conn.execute("INSERT INTO users (id, email, account_id) VALUES (%s, 'author@acme.test', %s)", (AUTHOR, ACCOUNT))
    group = cdb.value("SELECT min(groupid) FROM pg_dist_node WHERE groupid <> 0")
    keys = [k for (k,) in cdb.rows(
        "SELECT k FROM (SELECT md5('key' || i)::uuid AS k FROM generate_series(1, 400) AS i) AS x"
        " WHERE (SELECT p.groupid FROM pg_dist_placement AS p"
        "         WHERE p.shardid = get_shard_id_for_distribution_column('public.step_library', x.k)) = %s"
        " LIMIT 40", (group,))]
    assert len(keys) == 40
    insert = ("INSERT INTO step_library (id, {key}title, step_type, content, visibility, usage_count)"
              " SELECT md5('deploy' || i)::uuid, {value}'Deploy ' || i, 'action',"
              " jsonb_build_object('instructions', 'restart the service ' || i), 'public', mod(i, 50)"
              " FROM generate_series(1, 400) AS i")
    cdb.conn.execute(insert.format(key="tree_key, ", value="(%s::uuid[])[1 + mod(i, 40)], "), (keys,))
    db.conn.execute(insert.format(key="", value=""))
    for conn in (cdb.conn, db.conn):   # the walk by class (path B), as at a large library
        conn.execute("SET stepsync.search_estimate = '1000000'")
    searches = [(AUTHOR, "restart", {}), (AUTHOR, "restart", {"limit": 300}), (AUTHOR, "deploy service", {"limit": 5})]
    for user, query, kw in searches:
        args = "".join(f", p_{k} => %({k})s" for k in kw)
        sql = (f"SELECT id, usage_count, rank, complete FROM stepsync.search_steps(%(user)s, %(query)s{args})")
        params = {"user": user, "query": query, **kw}
        assert cdb.rows(sql, params) == db.rows(sql, params), (query, kw)
    commands = remote_commands(cdb.conn, "SELECT * FROM stepsync.search_steps(%s, 'restart')", (AUTHOR,))
    walks = [c for c in commands if "stepsync._search_local(" in c and " trestart" not in c]   # not the title rule's
    assert len(walks) == 4, commands   # two rounds on both workers


def test_search_reads_the_rows_with_the_callers_rights_on_citus(cdb, db, client):
    """The application's own row-level security on step_library holds for search on Citus as on one node:
    the rows are read on the workers with the caller's rights (stepsync._search_rows)."""
    build_search_library(cdb.conn)
    build_search_library(db.conn)
    role = psycopg.conninfo.conninfo_to_dict(client)["user"]
    one_node_role = f"stepsync_cp_one_{uuid.uuid4().hex[:8]}"
    db.conn.execute(f"CREATE ROLE {one_node_role}")
    for conn, grantee in ((cdb.conn, role), (db.conn, one_node_role)):
        if conn is db.conn:
            conn.execute(f"GRANT SELECT ON public.step_library, public.trees, public.users, public.accounts"
                         f" TO {grantee}")
        conn.execute("ALTER TABLE public.step_library ENABLE ROW LEVEL SECURITY")
        conn.execute(f"CREATE POLICY app_hides_odd_deploys ON public.step_library FOR SELECT TO {grantee}"
                     " USING (title !~ '^Deploy [0-9]*[13579]$')")
    sql = "SELECT title, rank, complete FROM stepsync.search_steps(%s, 'restart', p_limit => 300)"
    with psycopg.connect(client, autocommit=True) as conn:
        on_citus = conn.execute(sql, (AUTHOR,)).fetchall()
    with db.conn.transaction():
        db.conn.execute(f"SET LOCAL ROLE {one_node_role}")
        on_one_node = db.rows(sql, (AUTHOR,))
    assert on_citus == on_one_node
    titles = [t for t, _, _ in on_citus]
    assert "Deploy 2" in titles and "Deploy 1" not in titles
    assert not [t for t in titles if t.startswith("Deploy") and int(t.split()[1]) % 2]


def test_a_statement_prepared_under_stepsyncs_name_with_another_text_is_never_run(cdb):
    """stepsync._prepared (the search's statements on a Citus worker, docs/contract.md §11.3) names a
    statement after its text; one that a session prepared under that name from another text is replaced,
    never run, and the statement prepared is exactly the text given."""
    sql, types = "SELECT $1::integer + 1", "integer"
    name = cdb.value("SELECT 'stepsync_' || md5(%s || ' ' || %s)", (types, sql))
    cdb.conn.execute(f'PREPARE "{name}" (integer) AS SELECT $1::integer + 100')   # the same name, another text
    assert cdb.value("SELECT stepsync._prepared(%s, %s)", (sql, types)) == name
    assert cdb.value(f'EXECUTE "{name}" (1)') == 2
    assert cdb.rows("SELECT statement FROM pg_prepared_statements WHERE name = %s", (name,)) == [
        (f'PREPARE {name} (integer) AS {sql}',)]
    assert cdb.value("SELECT stepsync._prepared(%s, %s)", (sql, types)) == name   # there already: kept
    assert cdb.value("SELECT count(*) FROM pg_prepared_statements") == 1


def test_the_search_sample_stands_for_the_library_and_is_the_owners(cdb, client):
    """docs/contract.md §11.2: on Citus the coordinator's step_library has no statistics; the sample that
    stepsync.refresh_search_statistics() takes gives search_steps its figures, and only the owner takes it."""
    build_search_library(cdb.conn)
    assert cdb.rows("SELECT most_common_elems IS NULL, reltuples FROM stepsync._search_statistics()") == [(True, 0.0)]
    assert cdb.value("SELECT stepsync.refresh_search_statistics()") == 353   # fewer rows than the sample size
    elems, rows = cdb.rows("SELECT most_common_elems, reltuples FROM stepsync._search_statistics()")[0]
    assert rows == 353.0
    top = cdb.value("SELECT word FROM ts_stat('SELECT search_vector FROM public.step_library') ORDER BY ndoc DESC,"
                    " word LIMIT 1")
    assert top in elems   # the library's commonest lexeme, from the shards: not the coordinator's empty table
    assert cdb.rows("SELECT library_rows, sampled_rows FROM stepsync.search_sample_size") == [(353.0, 353)]
    with psycopg.connect(client, autocommit=True) as conn:
        error = refused(conn, "SELECT stepsync.refresh_search_statistics()")
    assert (error.sqlstate, error.diag.message_primary) == (
        "42501", "permission denied for function refresh_search_statistics")
    error = refused(cdb.conn, "SELECT stepsync.refresh_search_statistics(0)")
    assert (error.sqlstate, error.diag.message_primary) == ("22023", "p_sample_rows must be at least 1, not 0")


# --- §7: the command line ---------------------------------------------------------------------------------------------


def run(url: str, *args: str) -> subprocess.CompletedProcess:
    exe = [sys.executable, "-m", "stepsync.cli", "--database-url", url, *args]
    env = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
    result = subprocess.run(exe, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def on_every_node(db: CitusDb, sql: str) -> list[str]:
    """SQL's one value on the coordinator, then on each worker."""
    here = str(db.value(sql))
    there = [r[0] for r in db.rows("SELECT result FROM run_command_on_workers(%s) ORDER BY nodeport", (sql,))]
    return [here, *there]


def test_the_command_line_on_citus(laid_out):
    from stepsync import history

    db = laid_out
    head = history.head_revision()
    flows = Flows(db.conn)
    listed = flows.create({"steps": [header("Network"), step("a", "Restart the router"), step("b", "Check the cable")]},
                          status="published", name="Listed")
    bad = flows.create(S(step("a", "A"), step("b", 7)), status="published", name="Bad")
    flows.create({"steps": [step("x", "X")]}, name="Draft")

    result = run(db.url, "install")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        f"installed stepsync revision {head} (the distributed variant, on Citus); backfill: ")
    assert f"stepsync backfill skipped flow {bad} (Bad): " in result.stderr
    assert db.rows("SELECT source_node_id, is_active FROM step_library ORDER BY 1") == [("a", True), ("b", True)]
    assert on_every_node(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'stepsync'") == ["1", "1", "1"]

    result = run(db.url, "install")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        f"stepsync is up to date (revision {head}, distributed on Citus); nothing to do")

    result = run(db.url, "check", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [(f["tree_id"], f["path"]) for f in report["flows"]] == [(str(bad), "$.steps[1].title")]
    assert [(d["difference"], d["tree_id"]) for d in report["differences"]] == [("fails_checks", str(bad))] or \
        all(d["tree_id"] == str(bad) for d in report["differences"])
    db.conn.execute("UPDATE trees SET status = 'draft' WHERE id = %s", (bad,))
    result = run(db.url, "check")
    assert result.returncode == 1
    assert "1 flows fail the publish checks; 0 library differences" in result.stdout
    db.conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s", (Jsonb(S(step("a", "A"))), bad))
    result = run(db.url, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 flows fail the publish checks; 0 library differences" in result.stdout

    with sync_triggers_off(db.conn):
        flows.update(listed, tree_structure={"steps": [step("a", "Restart the router"), step("c", "C")]})
    result = run(db.url, "check")
    assert result.returncode == 1
    assert "0 flows fail the publish checks; 4 library differences" in result.stdout
    report = json.loads(run(db.url, "check", "--json").stdout)
    assert sorted((d["difference"], d["tree_id"], d["node_id"]) for d in report["differences"]) == [
        ("missing", str(listed), "a"), ("missing", str(listed), "c"), ("unexpected", str(listed), "a"),
        ("unexpected", str(listed), "b")]
    result = run(db.url, "resync", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "resynced 1 flows: 3 library rows written or retired",     # --all: the listed flows (as on one node)
        "changed 1 flows: 1 entries inserted, 1 updated, 1 retired",
        f"  {listed}  Listed: 1 inserted, 1 updated, 1 retired",
    ]
    assert db.rows("SELECT source_node_id, is_active FROM step_library ORDER BY 1") == [
        ("a", True), ("b", False), ("c", True)]
    assert run(db.url, "resync", str(listed)).stdout == "resynced 1 flows: 0 library rows written or retired\n"

    db.conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Mine', 'action', '{}')")
    result = run(db.url, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["revision"] == head
    assert status["flows"] == {"total": 3, "listed": 1, "draft": 2, "inactive": 0, "archived": 0}
    assert {k: status["library"][k] for k in ("synced_active", "synced_retired", "hand_made", "forks")} == {
        "synced_active": 2, "synced_retired": 1, "hand_made": 1, "forks": 0}
    last = db.value("SELECT max(last_synced_at) FROM step_library WHERE is_flow_synced")
    assert status["last_synced_at"] == last.isoformat()

    result = run(db.url, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no findings")

    ids = db.rows("SELECT id, source_node_id, is_active FROM step_library WHERE is_flow_synced ORDER BY 2")
    result = run(db.url, "uninstall")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(f"uninstalled stepsync (was at {head})")
    assert on_every_node(db, "SELECT count(*) FROM pg_namespace WHERE nspname = 'stepsync'") == ["0", "0", "0"]
    assert on_every_node(db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 't%\\_%' AND NOT tgisinternal"
                             " AND tgfoid::regproc::text LIKE 'stepsync.%'") == ["0", "0", "0"]
    assert db.value("SELECT to_regclass('public.stepsync_version')") is None
    assert db.rows("SELECT id, source_node_id, is_active FROM step_library WHERE is_flow_synced ORDER BY 2") == ids
    result = run(db.url, "status")
    assert result.returncode == 1

    result = run(db.url, "install")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        f"installed stepsync revision {head} (the distributed variant, on Citus); backfill: ")
    assert db.rows("SELECT id, source_node_id, is_active FROM step_library WHERE is_flow_synced ORDER BY 2") == ids
    assert oracle(db.conn) == []
    flows.publish(listed, {"steps": [step("a", "Restart the router, again")]})
    assert db.rows("SELECT source_node_id, title, is_active FROM step_library WHERE is_flow_synced ORDER BY 1") == [
        ("a", "Restart the router, again", True), ("b", "Check the cable", False), ("c", "C", False)]


# --- §10: the typed errors --------------------------------------------------------------------------------------------


def test_the_typed_errors_translate_citus_errors(flows, synced):
    from stepsync import errors

    _, ids = synced
    bad = flows.create(S(step("ok", "Fine"), step("s2", None)))
    with pytest.raises(psycopg.Error) as info:
        flows.publish(bad)
    typed = errors.translate(info.value)
    assert isinstance(typed, errors.FlowCheckFailed)
    assert (typed.sqlstate, typed.tree_id, typed.node_id, typed.path) == ("23514", bad, "s2", "$.steps[1].title")
    assert typed.problem == 'node "s2" has no usable "title": it is null'
    assert typed.detail == "JSON path: $.steps[1].title"
    assert typed.hint.startswith("Give the node")
    with pytest.raises(psycopg.Error) as info:
        flows.conn.execute("UPDATE step_library SET title = 'x' WHERE id = %s", (ids["a"],))
    typed = errors.translate(info.value)
    assert isinstance(typed, errors.SyncedStepReadOnly) and typed.sqlstate == "42501"
    unknown = uuid.uuid4()
    with pytest.raises(psycopg.Error) as info:
        flows.conn.execute("SELECT stepsync_citus.sync_tree(%s)", (unknown,))
    typed = errors.translate(info.value)
    assert isinstance(typed, errors.NotFound) and (typed.sqlstate, typed.tree_id) == ("P0002", unknown)
    assert errors.translate(refused(flows.conn, "SELECT 1/0")) is None
