"""Soak: N sessions write a few contended flows for T seconds, then the same across a crash.

Kept out of the default run: `pytest -m soak` (or STEPSYNC_SOAK=1) runs these;
plain `pytest` skips them. Budget: STEPSYNC_SOAK_SECONDS (default 15) and
STEPSYNC_SOAK_SESSIONS (default 4); STEPSYNC_SOAK_SEED fixes the random plans
(not the interleavings). Each run prints one `SOAK:` line (see it with -s or
-rA) and, when STEPSYNC_SOAK_REPORT names a file, all runs go there as JSON.

Each session is a thread with its own connection, in READ COMMITTED, doing
small explicit transactions (BEGIN ... COMMIT) on 4 flows: publish with random
structures (types change too), edit, republish, re-save, rename, deactivate,
reactivate, archive, back to draft, delete-and-recreate under the same id, a
few deliberately bad publishes (23514, rolled back to a savepoint, the
transaction goes on), and usage increments / ratings on random library rows.

The client side is deadlock-free by construction, so that any 40P01 is the
sync's: a transaction touches one flow, locks that flow's row before any of
its library rows (its first trees write or an explicit FOR UPDATE), and
increments library rows of other flows only one row per transaction.

Checked: no deadlock, no SQLSTATE other than the 23514s provoked, the oracle
(stepsync.check_library()) empty at every sample during the run, after crash
recovery and at the end, and every committed usage increment counted
(applied == sum(usage_count); deleting a flow keeps its entries). In the crash
run, connection failures are expected and an increment whose COMMIT got no
answer is ambiguous: applied <= counted <= applied + ambiguous.

Its own cluster (not the shared test server), with synchronous_commit=on: an
immediate stop must not lose acknowledged commits.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import traceback
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field

import psycopg
import pytest
from psycopg.types.json import Jsonb

from stepsync import database
from stepsync.cluster import ThrowawayCluster

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("STEPSYNC_SOAK_SECONDS", "15"))
SESSIONS = int(os.environ.get("STEPSYNC_SOAK_SESSIONS", "4"))
SEED = int(os.environ.get("STEPSYNC_SOAK_SEED") or random.SystemRandom().randrange(1_000_000))
FLOWS = 4
NODE_POOL = [f"n{i}" for i in range(8)]
TREE_TYPES = ("procedural", "maintenance", "troubleshooting")
TITLES = ("Check power", "Restart the unit", "Replace the fuse", "Call support", "Ünïcode ✓ step", "  padded  ")
# Connection failures a crash produces: no SQLSTATE (the socket closed), 08xxx, 57P01-57P03.
CONNECTION_STATES = {None, "57P01", "57P02", "57P03"}

RESULTS: dict[str, dict] = {}


# --- selection ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def soak_selected(request) -> None:
    """Skip unless `-m` names soak or STEPSYNC_SOAK is set: -m alone only filters when given."""
    markexpr = request.config.getoption("markexpr", default="") or ""
    if os.environ.get("STEPSYNC_SOAK") or re.search(r"\bsoak\b", markexpr):
        return
    pytest.skip("soak test: run with -m soak (or STEPSYNC_SOAK=1)")


@pytest.fixture(scope="module")
def cluster(soak_selected) -> ThrowawayCluster:
    # The throwaway defaults turn synchronous_commit off; an immediate stop would then lose acknowledged commits.
    c = ThrowawayCluster(extra_settings="-c synchronous_commit=on -c deadlock_timeout=200ms")
    try:
        yield c
    finally:
        c.stop()


def new_database(cluster: ThrowawayCluster, name: str) -> str:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = cluster.url(name)
    database.migrate(url)
    return url


# --- random structures -------------------------------------------------------------------------------------------

def random_commands(rng: random.Random):
    return rng.choice([
        None, "systemctl restart unit", "   ", [],
        ["check", {"code": "ls -l", "language": "bash", "label": "List"}, "  "],
        [{"code": "reboot", "language": "  "}, {"code": "df -h", "label": None, "language": None}],
    ])


def random_fields(rng: random.Random, procedural: bool) -> dict:
    fields = {}
    if rng.random() < 0.5:
        fields["description"] = rng.choice(["Do it carefully.", "   ", None, "Then wait."])
    if rng.random() < 0.3:
        fields["expected_outcome"] = rng.choice(["It works.", " \t", None])
    if rng.random() < 0.4:
        fields["commands"] = random_commands(rng)
    if procedural and rng.random() < 0.3:
        fields["library_visibility"] = rng.choice(["team", "public", None])
    return fields


def random_structure(rng: random.Random, tree_type: str) -> dict:
    ids = rng.sample(NODE_POOL, rng.randint(0, 6))
    if tree_type != "troubleshooting":
        steps = []
        for nid in ids:
            if rng.random() < 0.2:
                steps.append({"id": f"h-{nid}", "type": "section_header", "title": rng.choice(["Prepare", "  ", "Fix"])})
            steps.append({"id": nid, "type": "procedure_step", "title": rng.choice(TITLES),
                          **random_fields(rng, True)})
        if rng.random() < 0.2:
            steps.insert(rng.randint(0, len(steps)), {"id": "note", "type": "note", "text": "anything"})
        if rng.random() < 0.3:
            steps.append({"id": "end", "type": "procedure_end"})
        return {"steps": steps}
    root = {"id": "q-root", "type": "question", "title": "Start", "children": []}
    holders = [root]
    for k in range(rng.randint(0, 3)):
        q = {"id": f"q{k}", "type": "question", "title": "Which?", "children": []}
        attach(rng, holders, q)
        holders.append(q)
    for nid in ids:
        node = {"id": nid, "type": rng.choice(["action", "solution"]), "title": rng.choice(TITLES),
                **random_fields(rng, False), "children": []}
        if rng.random() < 0.2:
            node["library_visibility"] = "nonsense: ignored in troubleshooting flows"
        attach(rng, holders, node)
        holders.append(node)
    return {"root": root, "meta": {"version": rng.randint(1, 3)}}


def attach(rng: random.Random, holders: list[dict], node: dict) -> None:
    parent = rng.choice(holders)
    if rng.random() < 0.3 and "next" not in parent:
        parent["next"] = {"label": "then", "node": node}   # under any key, inside a plain object
    else:
        parent.setdefault("children", []).append(node)


def synced_nodes(value, out: list) -> list:
    """Every dict in VALUE (depth first) that could sync, with the list holding it (or None)."""
    if isinstance(value, dict):
        if value.get("type") in ("action", "solution", "procedure_step"):
            out.append(value)
        for v in value.values():
            synced_nodes(v, out)
    elif isinstance(value, list):
        for v in value:
            synced_nodes(v, out)
    return out


def all_ids(value, out: set) -> set:
    if isinstance(value, dict):
        if isinstance(value.get("id"), str):
            out.add(value["id"])
        for v in value.values():
            all_ids(v, out)
    elif isinstance(value, list):
        for v in value:
            all_ids(v, out)
    return out


def remove_node(value, target) -> bool:
    if isinstance(value, dict):
        for k, v in list(value.items()):
            if v is target:
                del value[k]
                return True
            if remove_node(v, target):
                return True
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if v is target:
                del value[i]
                return True
            if remove_node(v, target):
                return True
    return False


def edit_structure(rng: random.Random, tree_type: str, structure) -> dict:
    """One small edit of a (good) structure: retitle, re-describe, drop, add or (troubleshooting) retype a node."""
    if not isinstance(structure, dict):
        return random_structure(rng, tree_type)
    nodes = synced_nodes(structure, [])
    choice = rng.random()
    if nodes and choice < 0.35:
        rng.choice(nodes)["title"] = rng.choice(TITLES)
    elif nodes and choice < 0.5:
        rng.choice(nodes).update(random_fields(rng, tree_type != "troubleshooting"))
    elif nodes and choice < 0.65:
        remove_node(structure, rng.choice(nodes))
    elif nodes and choice < 0.75 and tree_type == "troubleshooting":
        node = rng.choice(nodes)
        node["type"] = rng.choice(["action", "solution", "question"])   # a question retires its entry
    else:
        free = [n for n in NODE_POOL if n not in all_ids(structure, set())]
        if not free:
            return random_structure(rng, tree_type)
        nid = rng.choice(free)
        if tree_type == "troubleshooting":
            holders = [structure.get("root")] if isinstance(structure.get("root"), dict) else []
            holders += [n for n in synced_nodes(structure, []) if isinstance(n, dict)]
            if not holders:
                return random_structure(rng, tree_type)
            attach(rng, holders, {"id": nid, "type": rng.choice(["action", "solution"]), "title": rng.choice(TITLES)})
        else:
            steps = structure.get("steps")
            if not isinstance(steps, list):
                return random_structure(rng, tree_type)
            steps.insert(rng.randint(0, len(steps)), {"id": nid, "type": "procedure_step", "title": rng.choice(TITLES),
                                                      **random_fields(rng, True)})
    return structure


# Structures every publish must refuse with 23514 (SPEC §4), with the type they are published as.
BAD_STRUCTURES = [
    ("procedural", {"steps": 3}),
    ("maintenance", {"steps": [{"id": "n1", "type": "procedure_step", "title": "A"},
                               {"id": "n1", "type": "procedure_step", "title": "B"}]}),
    ("procedural", {"steps": [{"id": "n2", "type": "procedure_step", "title": " \t"}]}),
    ("procedural", {"steps": [{"id": "n3", "type": "procedure_step", "title": "A", "library_visibility": "private"}]}),
    ("maintenance", {"steps": [{"id": "n4", "type": "procedure_step", "title": "A", "description": 7}]}),
    ("troubleshooting", ["not", "an", "object"]),
    ("troubleshooting", {"root": {"type": "action", "title": "no id"}}),
    ("troubleshooting", {"root": {"children": [{"id": "n5", "type": "solution", "title": "S", "commands": 5}]}}),
    ("troubleshooting", {"a": {"id": "n6", "type": "action", "title": "A"},
                         "b": [{"id": "n6", "type": "solution", "title": "B"}]}),
]


# --- sessions ----------------------------------------------------------------------------------------------------

@dataclass
class Tally:
    transactions: int = 0
    commits_after_restart: int = 0
    deadlocks: int = 0
    serialization_failures: int = 0
    rejected_23514: int = 0
    bad_structures_accepted: int = 0
    increments_applied: int = 0
    increments_ambiguous: int = 0
    ambiguous_commits: int = 0
    flow_replaced_retries: int = 0
    reconnects: int = 0
    unexpected: Counter = field(default_factory=Counter)
    samples: dict = field(default_factory=dict)
    connection_errors: Counter = field(default_factory=Counter)
    ops: Counter = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, Counter):
                mine.update(value)
            elif isinstance(mine, dict):
                for k, v in value.items():
                    mine.setdefault(k, v)
            else:
                setattr(self, name, mine + value)


class Txn:
    """What one transaction attempt did, so that its outcome can be booked."""

    def __init__(self) -> None:
        self.increments = 0
        self.ops: Counter = Counter()
        self.in_commit = False
        self.abort = False
        self.stage = "begin"


class Shared:
    """What the sessions and the conductor share: the restart time (None before any restart)."""

    def __init__(self) -> None:
        self.restarted_at: float | None = None


class Session(threading.Thread):
    def __init__(self, number: int, url: str, flow_ids: list[uuid.UUID], author: uuid.UUID, account: uuid.UUID,
                 deadline: float, crash_mode: bool, shared: Shared) -> None:
        super().__init__(name=f"soak-{number}", daemon=True)
        self.url = url
        self.flow_ids = flow_ids
        self.author = author
        self.account = account
        self.deadline = deadline
        self.crash_mode = crash_mode
        self.shared = shared
        self.rng = random.Random(SEED * 1000 + number)
        self.tally = Tally()
        self.conn: psycopg.Connection | None = None
        self.entry_ids: list = []
        self.entry_ids_age = 0
        self.failure: str | None = None

    # booking

    def unexpected(self, key: str, message: str) -> None:
        self.tally.unexpected[key] += 1
        self.tally.samples.setdefault(key, message[:500])

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                if self.conn is None and not self.connect():
                    continue
                fn = self.usage_txn if self.rng.random() < 0.35 else self.flow_txn
                self.attempt(fn)
        except BaseException:  # noqa: BLE001 - reported by the conductor
            self.failure = traceback.format_exc()
        finally:
            if self.conn is not None:
                self.conn.close()

    def connect(self) -> bool:
        try:
            self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                                        application_name=self.name, options="-c statement_timeout=60000")
            return True
        except psycopg.OperationalError as exc:
            self.tally.reconnects += 1
            if not self.crash_mode:
                self.unexpected("connect failed", str(exc))
            time.sleep(0.05)
            return False

    def attempt(self, fn) -> None:
        conn = self.conn
        txn = Txn()
        try:
            conn.execute("BEGIN")
            fn(conn, txn)
            if txn.abort:
                conn.execute("ROLLBACK")
                return
            txn.in_commit = True
            txn.stage = "commit"
            cur = conn.execute("COMMIT")
            if cur.statusmessage != "COMMIT":
                self.unexpected("commit rolled back", f"COMMIT answered {cur.statusmessage}")
                return
        except psycopg.Error as exc:
            self.failed(exc, txn)
            return
        t = self.tally
        t.transactions += 1
        t.increments_applied += txn.increments
        t.ops.update(txn.ops)
        if self.shared.restarted_at is not None:
            t.commits_after_restart += 1

    def failed(self, exc: psycopg.Error, txn: Txn) -> None:
        conn = self.conn
        state = exc.sqlstate
        lost = isinstance(exc, psycopg.OperationalError) and (
            conn.broken or conn.closed or state in CONNECTION_STATES or (state or "").startswith("08"))
        if lost:
            self.tally.connection_errors[state or "closed"] += 1
            if txn.in_commit:   # COMMIT was sent and got no answer: it may or may not have happened
                self.tally.ambiguous_commits += 1
                self.tally.increments_ambiguous += txn.increments
            if not self.crash_mode:
                self.unexpected(f"connection lost ({state})", str(exc))
            conn.close()
            self.conn = None
            return
        if state == "40P01":
            self.tally.deadlocks += 1
            self.tally.samples.setdefault("40P01", f"{exc}\n{exc.diag.context or ''}"[:2000])
        elif state == "40001":
            self.tally.serialization_failures += 1
            self.unexpected(state, str(exc))
        else:
            self.unexpected(str(state), f"in {txn.stage}: {exc}\nDETAIL: {exc.diag.message_detail}"
                                        f"\nCONTEXT: {exc.diag.context or ''}")
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            conn.close()
            self.conn = None

    # transactions

    def usage_txn(self, conn: psycopg.Connection, txn: Txn) -> None:
        """One library row of any flow (or none): one row per transaction."""
        if not self.entry_ids or self.entry_ids_age > 25:
            self.entry_ids = [r[0] for r in conn.execute("SELECT id FROM step_library").fetchall()]
            self.entry_ids_age = 0
        self.entry_ids_age += 1
        if not self.entry_ids:
            txn.abort = True
            return
        entry = self.rng.choice(self.entry_ids)
        txn.stage = f"usage of {entry}"
        if self.rng.random() < 0.2:
            cur = conn.execute("UPDATE step_library SET rating = %s, rating_count = rating_count + 1 WHERE id = %s",
                               (self.rng.choice([1, 2.5, 4.75, 5]), entry))
            txn.ops["rate"] += cur.rowcount
        else:
            cur = conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (entry,))
            txn.increments += cur.rowcount
            txn.ops["increment"] += cur.rowcount

    def flow_txn(self, conn: psycopg.Connection, txn: Txn) -> None:
        """1-3 operations on one flow; its row is locked before any of its library rows."""
        rng = self.rng
        tree = rng.choice(self.flow_ids)
        locked = rng.random() < 0.6
        if locked:
            row = conn.execute("SELECT 1 FROM trees WHERE id = %s FOR UPDATE", (tree,)).fetchone()
            if row is None:   # deleted and recreated since our snapshot: try again
                self.tally.flow_replaced_retries += 1
                txn.abort = True
                return
        ops = ["publish"] * 4 + ["republish"] * 3 + ["edit"] * 2 + ["deactivate"] * 2 + ["reactivate"] * 2 + \
              ["draft"] * 2 + ["archive", "publish_again", "resave", "rename", "toggle_public", "delete_recreate"]
        if locked:
            ops += ["increment_own"] * 3
        if rng.random() < 0.08:
            ops = ["bad_publish"]
        for _ in range(rng.randint(1, 3)):
            op = rng.choice(ops)
            txn.stage = f"{op} of {tree}"
            getattr(self, f"op_{op}")(conn, txn, tree)
            txn.ops[op] += 1

    def current(self, conn, tree):
        return conn.execute("SELECT tree_type, tree_structure FROM trees WHERE id = %s", (tree,)).fetchone()

    def op_publish(self, conn, txn, tree) -> None:
        row = self.current(conn, tree)
        tree_type = self.rng.choice(TREE_TYPES) if row is None or self.rng.random() < 0.25 else row[0]
        conn.execute("UPDATE trees SET status = 'published', is_active = true, tree_type = %s, tree_structure = %s"
                     " WHERE id = %s", (tree_type, Jsonb(random_structure(self.rng, tree_type)), tree))

    def op_republish(self, conn, txn, tree) -> None:
        row = self.current(conn, tree)
        if row is None:
            return
        conn.execute("UPDATE trees SET status = 'published', tree_structure = %s WHERE id = %s",
                     (Jsonb(edit_structure(self.rng, row[0], row[1])), tree))

    def op_edit(self, conn, txn, tree) -> None:
        row = self.current(conn, tree)
        if row is None:
            return
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s",
                     (Jsonb(edit_structure(self.rng, row[0], row[1])), tree))

    def op_publish_again(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))

    def op_resave(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET tree_structure = tree_structure, status = status, is_active = is_active"
                     " WHERE id = %s", (tree,))

    def op_rename(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET name = %s WHERE id = %s", (f"Flow {self.rng.randrange(100)}", tree))

    def op_toggle_public(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET is_public = NOT is_public WHERE id = %s", (tree,))

    def op_deactivate(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET is_active = false WHERE id = %s", (tree,))

    def op_reactivate(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET is_active = true WHERE id = %s", (tree,))

    def op_archive(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET status = 'archived' WHERE id = %s", (tree,))

    def op_draft(self, conn, txn, tree) -> None:
        conn.execute("UPDATE trees SET status = 'draft' WHERE id = %s", (tree,))

    def op_delete_recreate(self, conn, txn, tree) -> None:
        """Delete the flow (its entries retire and lose their source) and insert a new one under the same id."""
        conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
        tree_type = self.rng.choice(TREE_TYPES)
        conn.execute(
            "INSERT INTO trees (id, name, tree_type, tree_structure, status, is_public, account_id, author_id)"
            " VALUES (%s, 'Recreated', %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (tree, tree_type, Jsonb(random_structure(self.rng, tree_type)), self.rng.choice(["draft", "published"]),
             self.rng.random() < 0.5, self.account, self.author))

    def op_increment_own(self, conn, txn, tree) -> None:
        """Several rows in one transaction: safe, since we hold the flow's row (the sync of it waits for us)."""
        for (entry,) in conn.execute("SELECT id FROM step_library WHERE source_tree_id = %s ORDER BY random() LIMIT 2",
                                     (tree,)).fetchall():
            cur = conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (entry,))
            txn.increments += cur.rowcount

    def op_bad_publish(self, conn, txn, tree) -> None:
        tree_type, structure = self.rng.choice(BAD_STRUCTURES)
        conn.execute("SAVEPOINT bad_publish")
        try:
            cur = conn.execute("UPDATE trees SET status = 'published', is_active = true, tree_type = %s,"
                               " tree_structure = %s WHERE id = %s", (tree_type, Jsonb(structure), tree))
        except psycopg.errors.CheckViolation as exc:
            conn.execute("ROLLBACK TO SAVEPOINT bad_publish")
            self.tally.rejected_23514 += 1
            if str(tree) not in str(exc):
                self.unexpected("23514 without the tree id", str(exc))
            return
        conn.execute("ROLLBACK TO SAVEPOINT bad_publish")
        if cur.rowcount:   # 0 rows: the flow was replaced under us (not locked), nothing was published
            self.tally.bad_structures_accepted += 1
            self.unexpected("bad structure accepted", json.dumps([tree_type, structure]))


# --- the conductor -----------------------------------------------------------------------------------------------

def setup_flows(url: str, rng: random.Random) -> tuple[list[uuid.UUID], uuid.UUID, uuid.UUID]:
    with psycopg.connect(url, autocommit=True) as conn:
        account = conn.execute("INSERT INTO accounts (name) VALUES ('Soak') RETURNING id").fetchone()[0]
        author = conn.execute("INSERT INTO users (email, account_id) VALUES ('soak@acme.test', %s) RETURNING id",
                              (account,)).fetchone()[0]
        flow_ids = []
        for i in range(FLOWS):
            tree_type = TREE_TYPES[i % len(TREE_TYPES)]
            flow_ids.append(conn.execute(
                "INSERT INTO trees (name, tree_type, tree_structure, status, account_id, author_id)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (f"Flow {i}", tree_type, Jsonb(random_structure(rng, tree_type) if i else
                                               {"steps": [{"id": "n0", "type": "procedure_step", "title": "First"}]}),
                 "published" if i % 2 == 0 else "draft", account, author)).fetchone()[0])
        for title in ("Hand-made one", "Hand-made two"):
            conn.execute("INSERT INTO step_library (title, step_type, content, created_by, account_id)"
                         " VALUES (%s, 'action', %s, %s, %s)",
                         (title, Jsonb({"instructions": title, "help_text": None, "commands": [], "group_label": None}),
                          author, account))
        first = conn.execute("SELECT id FROM step_library WHERE is_flow_synced ORDER BY source_node_id LIMIT 1"
                             ).fetchone()[0]
        conn.execute("SELECT stepsync.fork_step(%s, %s)", (first, author))
    return flow_ids, author, account


class Oracle:
    """The conductor's own connection, reconnecting across a crash."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection | None = None

    def rows(self, sql: str = "SELECT * FROM stepsync.check_library()", *, wait: float = 0.0) -> list | None:
        deadline = time.monotonic() + wait
        while True:
            try:
                if self.conn is None:
                    self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                return self.conn.execute(sql).fetchall()
            except psycopg.OperationalError:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.1)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def soak(cluster: ThrowawayCluster, run: str, crashes: int) -> dict:
    url = new_database(cluster, f"soak_{run}")
    flow_ids, author, account = setup_flows(url, random.Random(SEED))
    oracle = Oracle(url)
    shared = Shared()
    start = time.monotonic()
    deadline = start + SECONDS
    sessions = [Session(i, url, flow_ids, author, account, deadline, crashes > 0, shared) for i in range(SESSIONS)]
    for s in sessions:
        s.start()

    crash_times = [start + SECONDS * (k + 1) / (crashes + 1) for k in range(crashes)]
    mid_run_checks, mid_run_max, mid_run_sample = 0, 0, None
    after_recovery: list[int] = []
    while time.monotonic() < deadline:
        if crash_times and time.monotonic() >= crash_times[0]:
            crash_times.pop(0)
            cluster.crash()
            time.sleep(0.3)    # the sessions find their connections gone and retry connecting
            cluster.restart()
            shared.restarted_at = time.monotonic()
            rows = oracle.rows(wait=30)
            after_recovery.append(-1 if rows is None else len(rows))
            continue
        rows = oracle.rows()
        if rows is not None:
            mid_run_checks += 1
            if len(rows) > mid_run_max:
                mid_run_max, mid_run_sample = len(rows), [list(map(str, r)) for r in rows[:5]]
        time.sleep(0.5)
    for s in sessions:
        s.join(timeout=120)
    elapsed = time.monotonic() - start
    hung = [s.name for s in sessions if s.is_alive()]
    failures = [s.failure for s in sessions if s.failure]

    tally = Tally()
    for s in sessions:
        tally.merge(s.tally)
    final = oracle.rows(wait=30)
    counted = oracle.rows("SELECT coalesce(sum(usage_count), 0)::bigint FROM step_library", wait=30)[0][0]
    library = oracle.rows("SELECT count(*), count(*) FILTER (WHERE is_flow_synced AND is_active),"
                          " count(*) FILTER (WHERE is_flow_synced AND source_tree_id IS NULL) FROM step_library")[0]
    version = oracle.rows("SHOW server_version")[0][0]
    oracle.close()

    report = {
        "run": run,
        "postgres": version,
        "sessions": SESSIONS,
        "seconds": round(elapsed, 1),
        "transactions": tally.transactions,
        "deadlocks": tally.deadlocks,
        "unexpected_sqlstates": sum(tally.unexpected.values()),
        "oracle_rows": len(final),
        "oracle_rows_mid_run_max": mid_run_max,
        "oracle_checks_mid_run": mid_run_checks,
        "increments_applied": tally.increments_applied,
        "increments_counted": counted,
        "increments_ambiguous": tally.increments_ambiguous,
        "rejected_23514": tally.rejected_23514,
        "crashes": crashes,
        "oracle_rows_after_recovery": after_recovery,
        "commits_after_restart": tally.commits_after_restart,
        "ambiguous_commits": tally.ambiguous_commits,
        "connection_errors": dict(tally.connection_errors),
        "reconnect_attempts": tally.reconnects,
        "flow_replaced_retries": tally.flow_replaced_retries,
        "library_rows": {"total": library[0], "synced_active": library[1], "orphaned": library[2]},
        "ops": dict(sorted(tally.ops.items())),
        "unexpected": dict(tally.unexpected),
        "samples": tally.samples,
        "oracle_sample": [list(map(str, r)) for r in final[:5]] or mid_run_sample,
        "seed": SEED,
        "hung_sessions": hung,
        "session_failures": failures,
    }
    RESULTS[run] = report
    line = " ".join(f"{k}={v}" for k, v in report.items() if k in (
        "run", "postgres", "sessions", "seconds", "transactions", "deadlocks", "unexpected_sqlstates",
        "oracle_rows", "oracle_rows_mid_run_max", "increments_applied", "increments_counted",
        "increments_ambiguous", "rejected_23514", "crashes", "oracle_rows_after_recovery",
        "commits_after_restart", "seed"))
    print(f"\nSOAK: {line}")
    print(f"SOAK-detail ({run}): ops={report['ops']} connection_errors={report['connection_errors']} "
          f"library={report['library_rows']} unexpected={report['unexpected']}")
    for key, sample in tally.samples.items():
        print(f"SOAK-sample ({run}) {key}: {sample}")
    path = os.environ.get("STEPSYNC_SOAK_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=2, default=str)
    return report


def check(report: dict) -> None:
    assert not report["session_failures"], report["session_failures"]
    assert not report["hung_sessions"], report
    assert report["deadlocks"] == 0, report["samples"].get("40P01")
    assert report["unexpected"] == {}, report["samples"]
    assert report["oracle_rows"] == 0, report["oracle_sample"]
    assert report["oracle_rows_mid_run_max"] == 0, report["oracle_sample"]
    assert report["oracle_checks_mid_run"] > 0
    # the soak did something: committed work of each kind, and refused every bad publish
    assert report["transactions"] > 0 and report["increments_applied"] > 0
    assert report["ops"].get("publish", 0) > 0 and report["ops"].get("delete_recreate", 0) > 0
    assert report["rejected_23514"] > 0


def test_soak_concurrent_writers(cluster):
    report = soak(cluster, "plain", crashes=0)
    check(report)
    assert report["increments_ambiguous"] == 0
    assert report["increments_counted"] == report["increments_applied"]


def test_soak_across_a_crash(cluster):
    report = soak(cluster, "crash", crashes=int(os.environ.get("STEPSYNC_SOAK_CRASHES", "1")))
    check(report)
    assert report["oracle_rows_after_recovery"] == [0] * report["crashes"]
    assert report["commits_after_restart"] > 0, "the sessions did not reconnect and go on after the restart"
    applied, counted, ambiguous = (report["increments_applied"], report["increments_counted"],
                                   report["increments_ambiguous"])
    assert applied <= counted <= applied + ambiguous
