"""Logical replication between two local clusters, and a streaming standby serving search.

(a) trees and step_library both published to a subscriber that has stepsync
    installed: the subscriber's library equals the publisher's row for row, the
    subscription stays healthy, and the subscriber's sync never runs (nothing is
    synced twice).
(b) only trees (with accounts and users) published: `stepsync replica
    --enable-always` on the subscriber makes it derive its own library, equal
    to the publisher's but for ids, counts and times; deletes included.
(c) a streaming (physical) standby answers `stepsync search`, `status` and
    `doctor`, and refuses writes in one line.

Run on PostgreSQL 15 (STEPSYNC_PG_BIN=/usr/lib/postgresql/15/bin) and 18
(STEPSYNC_PG_BIN=wheel). docs/replication.md is the user's guide to this.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from flows import Flows, header, step
from stepsync import database
from stepsync.pgbin import as_server_user, make_usable_by_server_user
from stepsync_dev.cluster import FAST_SETTINGS, ThrowawayCluster, _Postgresql

LOGICAL = ("-c wal_level=logical -c max_wal_senders=12 -c max_replication_slots=12"
           " -c max_logical_replication_workers=8 -c max_worker_processes=16 -c track_functions=pl")
ENV = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
ENV["COLUMNS"] = "250"


def stepsync(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stepsync.cli", "--database-url", url, *args], env=ENV,
                          capture_output=True, text=True, timeout=300, check=False)


def as_json(result: subprocess.CompletedProcess):
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[ThrowawayCluster, ThrowawayCluster]]:
    publisher = ThrowawayCluster(LOGICAL)
    try:
        subscriber = ThrowawayCluster(LOGICAL)
    except Exception:
        publisher.stop()
        raise
    try:
        yield publisher, subscriber
    finally:
        subscriber.stop()
        publisher.stop()


class Pair:
    """A migrated database on each cluster, and the subscriptions made between them (dropped at the end)."""

    def __init__(self, publisher: ThrowawayCluster, subscriber: ThrowawayCluster) -> None:
        self.name = f"app_{uuid.uuid4().hex[:8]}"
        self.publisher, self.subscriber = publisher, subscriber
        for cluster in (publisher, subscriber):
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            database.migrate(cluster.url(self.name))
        self.pub_url, self.sub_url = publisher.url(self.name), subscriber.url(self.name)
        self.pub = psycopg.connect(self.pub_url, autocommit=True)
        self.sub = psycopg.connect(self.sub_url, autocommit=True)
        self.subscriptions: list[str] = []

    def subscribe(self, tables: str) -> str:
        name = f"sub_{uuid.uuid4().hex[:8]}"
        self.pub.execute(f"CREATE PUBLICATION {name} FOR TABLE {tables}")
        self.sub.execute(f"CREATE SUBSCRIPTION {name} CONNECTION 'host=127.0.0.1 port={self.publisher.port}"
                         f" dbname={self.name} user=postgres' PUBLICATION {name}")
        self.subscriptions.append(name)
        wait_for(lambda: self.sub.execute(
            "SELECT count(*) FILTER (WHERE r.srsubstate <> 'r'), count(*) FROM pg_subscription_rel AS r"
            " JOIN pg_subscription AS s ON s.oid = r.srsubid WHERE s.subname = %s", (name,)).fetchone()
            in [(0, n) for n in range(1, 10)], what="the initial table sync")
        return name

    def caught_up(self) -> None:
        """Wait until the subscriber has applied everything the publisher committed so far."""
        marker = f"sentinel {uuid.uuid4()}"
        self.pub.execute("INSERT INTO accounts (name) VALUES (%s)", (marker,))
        wait_for(lambda: self.sub.execute("SELECT count(*) FROM accounts WHERE name = %s", (marker,)).fetchone()[0]
                 == 1, what="the subscriber to catch up")

    def healthy(self, name: str) -> None:
        pid, enabled = self.sub.execute(
            "SELECT st.pid, s.subenabled FROM pg_subscription AS s"
            " LEFT JOIN pg_stat_subscription AS st ON st.subid = s.oid AND st.relid IS NULL"
            " WHERE s.subname = %s", (name,)).fetchone()
        assert enabled and pid is not None, "the apply worker is not running"
        assert self.sub.execute("SELECT apply_error_count, sync_error_count FROM pg_stat_subscription_stats"
                                " WHERE subname = %s", (name,)).fetchone() == (0, 0)

    def close(self) -> None:
        for name in self.subscriptions:
            self.sub.execute(f"DROP SUBSCRIPTION IF EXISTS {name}")
        self.pub.close()
        self.sub.close()
        for cluster in (self.publisher, self.subscriber):
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@pytest.fixture
def pair(clusters) -> Iterator[Pair]:
    p = Pair(*clusters)
    try:
        yield p
    finally:
        p.close()


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


ROUTER = {"steps": [header("Network"), step("a", "Restart the router", commands="reboot"),
                    step("b", "Check the cable"), step("c", "Call the provider")]}
ROUTER_EDITED = {"steps": [header("Network"), step("a", "Restart the router", commands="reboot now"),
                           step("c", "Call the provider"), step("d", "Replace the router")]}
WIFI = {"type": "question", "id": "q", "title": "Is the light on?", "children": [
    {"id": "s1", "type": "solution", "title": "Plug it in"},
    {"id": "q2", "type": "question", "title": "Blinking?", "children": [{"id": "a1", "type": "action",
                                                                         "title": "Wait a minute"}]}]}


def before_subscribing(f: Flows) -> dict:
    """Flows the publisher already has when the subscription starts (they go by the initial copy)."""
    ids = {
        "router": f.create(ROUTER, status="published", name="Router"),
        "wifi": f.create(WIFI, tree_type="troubleshooting", status="published", is_public=True, name="Wifi"),
        "draft": f.create(ROUTER, name="Draft"),
        "doomed": f.create(ROUTER, tree_type="maintenance", status="published", name="Doomed"),
    }
    f.conn.execute("UPDATE step_library SET usage_count = usage_count + 5 WHERE source_node_id = 'a'")
    return ids


def after_subscribing(f: Flows, ids: dict) -> None:
    """Every kind of write, replicated as it happens."""
    f.publish(ids["draft"])                                   # newly listed
    f.update(ids["router"], tree_structure=ROUTER_EDITED)     # one edited, one removed, one added
    f.update(ids["router"], name="Router (renamed)")          # no library work
    f.update(ids["wifi"], is_active=False)                    # all retired
    f.update(ids["wifi"], is_active=True)                     # and back
    f.update(ids["draft"], status="archived")                 # retired
    f.conn.execute("DELETE FROM trees WHERE id = %s", (ids["doomed"],))   # retired, source_tree_id null
    late = f.create(WIFI, tree_type="troubleshooting", status="published", name="Late")
    entry = f.conn.execute("SELECT id FROM step_library WHERE source_tree_id = %s AND source_node_id = 's1'",
                           (late,)).fetchone()[0]
    f.conn.execute("SELECT stepsync.fork_step(%s, %s)", (entry, f.actors.author))
    f.conn.execute("UPDATE step_library SET usage_count = usage_count + 1, rating = 4.5, rating_count = 1"
                   " WHERE id = %s", (entry,))
    f.conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Hand-made', 'action',"
                   " '{\"instructions\": \"x\", \"help_text\": null, \"commands\": [], \"group_label\": null}')")


ALL_COLUMNS = "SELECT s::text FROM step_library AS s ORDER BY s.id"
DERIVED = ("SELECT source_tree_id, source_node_id, title, step_type, content::text, visibility, created_by,"
           " account_id, is_active, last_synced_at IS NOT NULL FROM step_library WHERE is_flow_synced"
           " ORDER BY source_tree_id NULLS FIRST, source_node_id, is_active")


def sync_calls(conn: psycopg.Connection) -> int:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions"
                        " WHERE schemaname = 'stepsync' AND funcname IN ('_sync', '_retire')").fetchone()[0]


def test_a_library_published_too_is_the_publishers_row_for_row(pair):
    f = Flows(pair.pub)
    ids = before_subscribing(f)
    name = pair.subscribe("public.accounts, public.users, public.trees, public.step_library")
    after_subscribing(f, ids)
    pair.caught_up()

    assert pair.sub.execute(ALL_COLUMNS).fetchall() == pair.pub.execute(ALL_COLUMNS).fetchall()
    assert pair.sub.execute("SELECT t::text FROM trees t ORDER BY id").fetchall() == \
        pair.pub.execute("SELECT t::text FROM trees t ORDER BY id").fetchall()
    pair.healthy(name)
    # Nothing synced twice: the publisher's sync ran; the subscriber's never did (its triggers stay
    # ENABLE, and replicated rows do not fire those), every entry came as the publisher wrote it.
    time.sleep(1.0)   # cumulative statistics are flushed within a second
    assert sync_calls(pair.pub) > 0
    assert sync_calls(pair.sub) == 0
    assert pair.sub.execute("SELECT * FROM stepsync.check_library()").fetchall() == []

    doctor = stepsync("doctor", "--json", url=pair.sub_url)
    assert doctor.returncode == 0, doctor.stdout
    assert as_json(doctor)["findings"] == []
    pub_status, sub_status = (as_json(stepsync("status", "--json", url=u)) for u in (pair.pub_url, pair.sub_url))
    assert (sub_status["flows"], sub_status["library"], sub_status["last_synced_at"]) == \
        (pub_status["flows"], pub_status["library"], pub_status["last_synced_at"])

    refused = stepsync("replica", "--enable-always", url=pair.sub_url)
    assert refused.returncode == 1
    assert refused.stderr == (f"stepsync: error: subscription {name} replicates public.step_library into this"
                              " database: with the sync triggers ENABLE ALWAYS the library would be written twice;"
                              " either publish only public.trees to this database or leave the triggers as they"
                              " are (see docs/replication.md)\n")
    replica = as_json(stepsync("replica", "--json", url=pair.sub_url))
    assert replica["mode"] == "default"
    assert replica["subscriptions"] == [{"name": name, "enabled": True,
                                         "tables": ["public.step_library", "public.trees"]}]

    # Switched by hand anyway: doctor says what goes wrong and how to undo it.
    for table, trigger in pair.sub.execute(
            "SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger AS t JOIN pg_proc AS p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND p.pronamespace = 'stepsync'::regnamespace"
            "   AND (t.tgrelid = 'public.step_library'::regclass"
            "        OR (t.tgrelid = 'public.trees'::regclass AND p.proname NOT LIKE '%updated_at%'))").fetchall():
        pair.sub.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}")
    report = as_json(stepsync("doctor", "--json", url=pair.sub_url))
    assert [(x["check"], x["object"]) for x in report["findings"]] == [
        ("replication", f"subscription {name}"), ("replication", f"trigger {replica['foreign_key_trigger']['trigger']}"
                                                                 " on public.trees")]
    assert report["findings"][0]["message"].endswith("the library is written twice (conflicts stop the"
                                                     " subscription): `stepsync replica --reset`")
    assert stepsync("replica", "--reset", url=pair.sub_url).returncode == 0
    assert as_json(stepsync("doctor", "--json", url=pair.sub_url))["findings"] == []


def test_b_only_trees_published_the_subscriber_derives_its_own_library(pair):
    f = Flows(pair.pub)
    ids = before_subscribing(f)
    switched = stepsync("replica", "--enable-always", url=pair.sub_url)
    assert switched.returncode == 0, switched.stderr
    assert switched.stderr == ""   # a superuser: the foreign key's delete action is switched too
    name = pair.subscribe("public.accounts, public.users, public.trees")
    pair.caught_up()
    # The initial copy fired the ENABLE ALWAYS triggers: the flows listed before the subscription are synced.
    assert pair.sub.execute(DERIVED).fetchall() == pair.pub.execute(DERIVED).fetchall()

    after_subscribing(f, ids)
    pair.caught_up()
    derived = pair.sub.execute(DERIVED).fetchall()
    assert derived == pair.pub.execute(DERIVED).fetchall()
    assert len(derived) == 14
    # Deletes: the deleted flow's entries are retired and their source_tree_id is null, as on the publisher.
    assert pair.sub.execute("SELECT count(*) FROM step_library WHERE source_tree_id IS NULL AND is_flow_synced"
                            " AND NOT is_active").fetchone()[0] == 3
    # Its own rows: other ids, its own counts, and neither the fork nor the hand-made row of the publisher.
    assert not set(pair.sub.execute("SELECT id FROM step_library").fetchall()) & \
        set(pair.pub.execute("SELECT id FROM step_library").fetchall())
    assert pair.sub.execute("SELECT count(*) FROM step_library WHERE usage_count > 0 OR NOT is_flow_synced"
                            ).fetchone()[0] == 0
    assert pair.sub.execute("SELECT * FROM stepsync.check_library()").fetchall() == []
    pair.healthy(name)

    doctor = stepsync("doctor", "--json", url=pair.sub_url)
    assert doctor.returncode == 0, doctor.stdout
    assert as_json(stepsync("replica", "--json", url=pair.sub_url))["mode"] == "always"

    # The subscriber's library can be searched and forked like any other (it is its own).
    hits = as_json(stepsync("search", "router", "--as", str(f.actors.author), "--json", url=pair.sub_url))
    assert {h["title"] for h in hits} == {"Restart the router", "Replace the router"}


def test_b_switched_after_the_initial_copy_then_resynced(pair):
    f = Flows(pair.pub)
    before_subscribing(f)
    name = pair.subscribe("public.accounts, public.users, public.trees")
    pair.caught_up()
    assert pair.sub.execute("SELECT count(*) FROM step_library").fetchone()[0] == 0
    report = as_json(stepsync("doctor", "--json", url=pair.sub_url))
    assert [(x["check"], x["object"]) for x in report["findings"]] == [
        ("replication", f"subscription {name}"), ("library", "public.step_library")]
    assert report["findings"][0]["message"].endswith(
        "the library does not follow the flows: `stepsync replica --enable-always`, then `stepsync resync --all`")

    assert stepsync("replica", "--enable-always", url=pair.sub_url).returncode == 0
    resync = stepsync("resync", "--all", url=pair.sub_url)
    assert resync.returncode == 0, resync.stderr
    assert resync.stdout.splitlines()[0] == "resynced 3 flows: 8 library rows written or retired"
    router = f.conn.execute("SELECT id FROM trees WHERE name = 'Router'").fetchone()[0]
    f.update(router, tree_structure=ROUTER_EDITED)
    pair.caught_up()
    assert pair.sub.execute(DERIVED).fetchall() == pair.pub.execute(DERIVED).fetchall()
    assert as_json(stepsync("doctor", "--json", url=pair.sub_url))["findings"] == []
    pair.healthy(name)


# --- (c) a streaming standby ---------------------------------------------------------------------

class _StandbyPostgresql(_Postgresql):
    """A server whose data folder is a pg_basebackup of a primary (-R: it starts as a streaming standby)."""

    def initialize_database(self) -> None:
        data = os.path.join(self.base_dir, "data")
        if os.path.exists(os.path.join(data, "PG_VERSION")):
            return
        make_usable_by_server_user(Path(self.initdb).parent, Path(self.base_dir))
        basebackup = str(Path(self.initdb).parent / "pg_basebackup")
        result = subprocess.run(as_server_user([basebackup, "-D", data, "-R", "-X", "stream", "-c", "fast",
                                                "-d", self.settings["primary"]]),
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {result.stderr.strip()}")


def test_c_a_streaming_standby_serves_search_status_and_doctor(clusters):
    primary = clusters[0]
    name = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        database.migrate(primary.url(name))
        with psycopg.connect(primary.url(name), autocommit=True) as conn:
            f = Flows(conn)
            before_subscribing(f)
            author = f.actors.author
            with _standby_of(clusters) as standby_url:
                url = f"{standby_url}/{name}"
                lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
                with psycopg.connect(url, autocommit=True) as replica:
                    wait_for(lambda: replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                                     (lsn,)).fetchone()[0], what="the standby to replay")
                hits = stepsync("search", "router", "--as", str(author), "--json", url=url)
                assert hits.returncode == 0, hits.stderr
                assert [h["title"] for h in as_json(hits)] == ["Restart the router", "Restart the router"]
                status = as_json(stepsync("status", "--json", url=url))
                assert status["in_recovery"] is True and status["library"]["synced_active"] == 8
                doctor = stepsync("doctor", "--json", url=url)
                assert doctor.returncode == 0 and as_json(doctor)["findings"] == []
                for args, says in [
                    (("resync", "--all"), "stepsync: database error [25006]: cannot execute SELECT FOR NO KEY UPDATE"
                                          " in a read-only transaction (this server is read-only (a standby?): run"
                                          " this command on the primary)"),
                    (("doctor", "--exact"), "stepsync: error: doctor --exact cannot run on a read-only server"),
                    (("replica", "--enable-always"), "stepsync: database error [25006]:"),
                ]:
                    result = stepsync(*args, url=url)
                    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
                    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(says), result.stderr
    finally:
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _standby_of:
    """Context manager: a streaming standby of the first cluster, started from a base backup."""

    def __init__(self, clusters) -> None:
        self.primary = clusters[0]

    def __enter__(self) -> str:
        import tempfile

        self.base_dir = tempfile.mkdtemp(prefix="stepsync-standby-")
        os.chmod(self.base_dir, 0o755)
        self.pg = _StandbyPostgresql(
            base_dir=self.base_dir, initdb=str(self.primary.bin_dir / "initdb"),
            postgres=str(self.primary.bin_dir / "postgres"),
            postgres_args=f"-h 127.0.0.1 -F -c logging_collector=off {FAST_SETTINGS} {LOGICAL}",
            primary=f"host=127.0.0.1 port={self.primary.port} user=postgres")
        return f"postgresql://postgres@127.0.0.1:{self.pg.settings['port']}"

    def __exit__(self, *exc) -> None:
        self.pg.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
