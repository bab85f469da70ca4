"""Soak: N sessions write a few contended flows for T seconds, then the same across a crash.

Kept out of the default run (pyproject deselects the soak marker): `pytest -m soak` runs these;
plain `pytest` deselects them. Budget: STEPSYNC_SOAK_SECONDS (default 15) and
STEPSYNC_SOAK_SESSIONS (default 4); STEPSYNC_SOAK_CRASHES (default 1) immediate
stops in the crash run; STEPSYNC_SOAK_SEED fixes the random plans (not the
interleavings). Each run prints one `SOAK:` line (see it with -s or -rA) and,
when STEPSYNC_SOAK_REPORT names a file, all runs go there as JSON.

Each session is a thread with its own connection, in READ COMMITTED, doing
small explicit transactions (BEGIN ... COMMIT) on 4 flows: publish with random
structures (types change too), edit, republish, re-save, rename, deactivate,
reactivate, archive, back to draft, delete-and-recreate under the same id, a
few deliberately bad publishes (23514, rolled back to a savepoint, the
transaction goes on), and usage increments / ratings on library rows.

The client side is deadlock-free by construction, so that any 40P01 is the
sync's:
 * a flow transaction touches one flow and locks that flow's row before any of
   its library rows (its first trees write or an explicit FOR UPDATE);
 * usage transactions on arbitrary library rows touch one row each;
 * on two of the four flows every transaction makes one library-touching
   statement, and "ordered" clients increment 2-3 entries of one of those
   flows in one transaction, in source_node_id order, without locking the
   flow: the order stepsync._sync locks a flow's entries in, which its comment
   tells clients to follow. A deadlock there is a sync statement (publish,
   retire, delete) taking entries in another order.
   STEPSYNC_SOAK_ORDERED_CLIENTS=0 leaves these clients out.
The server log's deadlock reports (both statements) go into the report.
Statistics are kept fresh (autovacuum_naptime=1s) so that the sync's
statements get the plans, hence the row orders, of a live database.

Checked: no deadlock, no SQLSTATE other than the 23514s provoked, the oracle
(stepsync.check_library()) empty at every sample during the run, after crash
recovery and at the end, and every committed usage increment counted, in sum
and per row (applied == sum(usage_count); deleting a flow keeps its entries).
In the crash run, connection failures are expected and an increment whose
COMMIT got no answer is ambiguous: applied <= counted <= applied + ambiguous.

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
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg.types.json import Jsonb

from stepsync import database
from stepsync_dev.cluster import ThrowawayCluster

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("STEPSYNC_SOAK_SECONDS", "15"))
SESSIONS = int(os.environ.get("STEPSYNC_SOAK_SESSIONS", "4"))
SEED = int(os.environ.get("STEPSYNC_SOAK_SEED") or random.SystemRandom().randrange(1_000_000))
FLOWS = 4
# The first ORDERED_FLOWS flows get one statement per transaction (so that every lock taken on their entries is
# the sync's, in one statement) and are the ones the ordered-increment clients use.
ORDERED_FLOWS = 2
# STEPSYNC_SOAK_ORDERED_CLIENTS=0 leaves those clients out (to see whether anything else deadlocks).
ORDERED_CLIENTS = os.environ.get("STEPSYNC_SOAK_ORDERED_CLIENTS", "1") != "0"
NODE_POOL = [f"n{i}" for i in range(8)]
TREE_TYPES = ("procedural", "maintenance", "troubleshooting")
TITLES = ("Check power", "Restart the unit", "Replace the fuse", "Call support", "Ünïcode ✓ step", "  padded  ")
# Connection failures a crash produces: no SQLSTATE (the socket closed), 08xxx, 57P01-57P03.
CONNECTION_STATES = {None, "57P01", "57P02", "57P03"}

RESULTS: dict[str, dict] = {}


# --- selection ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster() -> ThrowawayCluster:
    # The throwaway defaults turn synchronous_commit off; an immediate stop would then lose acknowledged commits.
    # autovacuum_naptime=1s: statistics as a live database has them (autovacuum analyzes the churning library),
    # so that the sync's statements run with the plans they get in production, not those of never-analyzed tables.
    c = ThrowawayCluster(extra_settings="-c synchronous_commit=on -c deadlock_timeout=200ms -c autovacuum_naptime=1s")
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
                steps.append({"id": f"h-{nid}", "type": "section_header",
                              "title": rng.choice(["Prepare", "  ", "Fix"])})
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


# Structures every publish must refuse with 23514 (docs/contract.md §4), with the type they are published as.
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
    applied_by_entry: Counter = field(default_factory=Counter)
    ambiguous_by_entry: Counter = field(default_factory=Counter)
    ambiguous_commits: int = 0
    flow_replaced_retries: int = 0
    retries: int = 0
    reconnects: int = 0
    unexpected: Counter = field(default_factory=Counter)
    deadlocks_by_stage: Counter = field(default_factory=Counter)
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
        self.increments: Counter = Counter()   # entry id -> increments made in this transaction
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
        self.live_ids: list = []
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
                pick = self.rng.random()
                fn = (self.usage_txn if pick < 0.3 else self.ordered_usage_txn if pick < 0.4 and ORDERED_CLIENTS
                      else self.flow_txn)
                plan = self.rng.getstate()
                for _ in range(5):   # a deadlock or serialization failure: the same transaction again (counted)
                    if not self.attempt(fn) or self.conn is None or time.monotonic() >= self.deadline:
                        break
                    self.tally.retries += 1
                    self.rng.setstate(plan)
        except BaseException:  # any failure at all: reported by the conductor
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

    def attempt(self, fn) -> bool:
        """One try of a transaction; True when it failed in a way worth retrying (40P01, 40001)."""
        conn = self.conn
        txn = Txn()
        try:
            conn.execute("BEGIN")
            fn(conn, txn)
            if txn.abort:
                conn.execute("ROLLBACK")
                return False
            txn.in_commit = True
            txn.stage = "commit"
            cur = conn.execute("COMMIT")
            if cur.statusmessage != "COMMIT":
                self.unexpected("commit rolled back", f"COMMIT answered {cur.statusmessage}")
                return False
        except psycopg.Error as exc:
            self.failed(exc, txn)
            return exc.sqlstate in ("40P01", "40001")
        t = self.tally
        t.transactions += 1
        t.increments_applied += txn.increments.total()
        t.applied_by_entry.update(txn.increments)
        t.ops.update(txn.ops)
        if self.shared.restarted_at is not None:
            t.commits_after_restart += 1
        return False

    def failed(self, exc: psycopg.Error, txn: Txn) -> None:
        conn = self.conn
        state = exc.sqlstate
        lost = isinstance(exc, psycopg.OperationalError) and (
            conn.broken or conn.closed or state in CONNECTION_STATES or (state or "").startswith("08"))
        if lost:
            self.tally.connection_errors[state or "closed"] += 1
            if txn.in_commit:   # COMMIT was sent and got no answer: it may or may not have happened
                self.tally.ambiguous_commits += 1
                self.tally.increments_ambiguous += txn.increments.total()
                self.tally.ambiguous_by_entry.update(txn.increments)
            if not self.crash_mode:
                self.unexpected(f"connection lost ({state})", str(exc))
            conn.close()
            self.conn = None
            return
        if state == "40P01":
            self.tally.deadlocks += 1
            self.tally.deadlocks_by_stage[txn.stage.split(" of ")[0].split(" on ")[0]] += 1
            self.tally.samples.setdefault("40P01", f"in {txn.stage}: {exc}"[:3000])
        elif state == "40001":
            self.tally.serialization_failures += 1
            self.unexpected(state, str(exc))
        else:
            self.unexpected(str(state), f"in {txn.stage}: {exc}")
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            conn.close()
            self.conn = None

    # transactions

    def usage_txn(self, conn: psycopg.Connection, txn: Txn) -> None:
        """One library row, one row per transaction: half the time an entry of a flow that still exists
        (the rows the sync contends for), else any row (retired, orphaned, hand-made, fork)."""
        if not self.entry_ids or self.entry_ids_age > 20:
            rows = conn.execute("SELECT id, source_tree_id IS NOT NULL FROM step_library").fetchall()
            self.entry_ids = [r[0] for r in rows]
            self.live_ids = [r[0] for r in rows if r[1]] or self.entry_ids
            self.entry_ids_age = 0
        self.entry_ids_age += 1
        if not self.entry_ids:
            txn.abort = True
            return
        entry = self.rng.choice(self.live_ids if self.rng.random() < 0.5 else self.entry_ids)
        txn.stage = f"usage of {entry}"
        if self.rng.random() < 0.2:
            cur = conn.execute("UPDATE step_library SET rating = %s, rating_count = rating_count + 1 WHERE id = %s",
                               (self.rng.choice([1, 2.5, 4.75, 5]), entry))
            txn.ops["rate"] += cur.rowcount
        else:
            cur = conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (entry,))
            txn.increments[entry] += cur.rowcount
            txn.ops["increment"] += cur.rowcount

    def ordered_usage_txn(self, conn: psycopg.Connection, txn: Txn) -> None:
        """2-3 entries of one flow, in source_node_id order, without locking the flow: the order in which the
        sync takes a flow's entries (stepsync._sync locks them so), so that it cannot deadlock with us."""
        tree = self.rng.choice(self.flow_ids[:ORDERED_FLOWS])
        txn.stage = f"ordered increments on {tree}"
        entries = [r[0] for r in conn.execute(
            "SELECT id FROM step_library WHERE source_tree_id = %s AND is_flow_synced ORDER BY source_node_id",
            (tree,)).fetchall()]
        if len(entries) < 2:
            txn.abort = True
            return
        chosen = sorted(self.rng.sample(range(len(entries)), min(len(entries), self.rng.randint(2, 3))))
        for i in chosen:
            cur = conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (entries[i],))
            txn.increments[entries[i]] += cur.rowcount
        txn.ops["ordered_increments"] += 1

    def flow_txn(self, conn: psycopg.Connection, txn: Txn) -> None:
        """1-3 operations on one flow (one on the ordered flows); its row is locked before any of its entries."""
        rng = self.rng
        tree = rng.choice(self.flow_ids)
        single = tree in self.flow_ids[:ORDERED_FLOWS]
        locked = rng.random() < 0.6
        if locked:
            row = conn.execute("SELECT 1 FROM trees WHERE id = %s FOR UPDATE", (tree,)).fetchone()
            if row is None:   # deleted and recreated since our snapshot: give this one up
                self.tally.flow_replaced_retries += 1
                txn.abort = True
                return
        ops = ["publish"] * 4 + ["republish"] * 3 + ["edit"] * 2 + ["deactivate"] * 2 + ["reactivate"] * 2 + \
              ["draft"] * 2 + ["archive", "publish_again", "resave", "rename", "toggle_public", "delete_recreate"]
        if locked:
            ops += ["increment_own"] * 3
        if rng.random() < 0.08:
            ops = ["bad_publish"]
        for _ in range(1 if single else rng.randint(1, 3)):
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
        """Several rows in one transaction, holding the flow's row (its sync waits for us), in source_node_id
        order (as the ordered-increment clients of the same flow do)."""
        for (entry,) in conn.execute(
                "SELECT id FROM (SELECT id, source_node_id FROM step_library WHERE source_tree_id = %s"
                " ORDER BY random() LIMIT 2) AS s ORDER BY source_node_id", (tree,)).fetchall():
            cur = conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (entry,))
            txn.increments[entry] += cur.rowcount

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
        conn.execute("ANALYZE")
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


def server_log_deadlocks(log: str) -> list[str]:
    """The server's reports of deadlocks (they name both statements, which the client's error does not)."""
    reports, current = [], None
    for line in log.splitlines():
        m = re.match(r"^\S+ \S+ \S+ \[\d+\] (\w+):  (.*)$", line)
        if m and m.group(1) == "ERROR" and m.group(2).startswith("deadlock detected"):
            current = ["ERROR:  deadlock detected"]
            reports.append(current)
        elif current is not None and (line.startswith("\t") or (m and m.group(1) in ("DETAIL", "HINT", "CONTEXT",
                                                                                       "STATEMENT"))):
            current.append(line if line.startswith("\t") else f"{m.group(1)}:  {m.group(2)}")
        else:
            current = None
    return ["\n".join(r) for r in reports]


def deadlock_pairs(reports: list[str]) -> dict[str, int]:
    """How often each pair of statements deadlocked, each with the sync function it was in, if any."""
    pairs: Counter = Counter()
    for report in reports:
        statements = sorted(re.findall(r"\tProcess \d+: (.*)", report))
        where = re.findall(r"PL/pgSQL function (stepsync\.\w+)\(", report)
        ri = "SET \"source_tree_id\" = NULL" in report or "source_tree_id\" = NULL" in report
        pairs[" x ".join(statements) + f" (victim in {where[0] if where else 'RI set null' if ri else 'client'})"] += 1
    return dict(pairs)


def soak(cluster: ThrowawayCluster, run: str, crashes: int) -> dict:
    log_start = len(cluster.server_log())   # this run's part of the server log
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
    # the same per entry: every row's usage_count is exactly what was committed on it
    per_entry = dict(oracle.rows("SELECT id, usage_count FROM step_library", wait=30))
    mismatched = {str(e): (tally.applied_by_entry[e], n, tally.ambiguous_by_entry[e]) for e, n in per_entry.items()
                  if not tally.applied_by_entry[e] <= n <= tally.applied_by_entry[e] + tally.ambiguous_by_entry[e]}
    mismatched.update({str(e): (n, None, None) for e, n in tally.applied_by_entry.items() if e not in per_entry})
    library = oracle.rows("SELECT count(*), count(*) FILTER (WHERE is_flow_synced AND is_active),"
                          " count(*) FILTER (WHERE is_flow_synced AND source_tree_id IS NULL) FROM step_library")[0]
    version = oracle.rows("SHOW server_version")[0][0]
    deadlock_log = server_log_deadlocks(cluster.server_log()[log_start:])
    oracle.close()

    report = {
        "run": run,
        "postgres": version,
        "sessions": SESSIONS,
        "seconds": round(elapsed, 1),
        "transactions": tally.transactions,
        "deadlocks": tally.deadlocks,
        "deadlocks_by_victim": dict(tally.deadlocks_by_stage),
        "unexpected_sqlstates": sum(tally.unexpected.values()),
        "oracle_rows": len(final),
        "oracle_rows_mid_run_max": mid_run_max,
        "oracle_checks_mid_run": mid_run_checks,
        "increments_applied": tally.increments_applied,
        "increments_counted": counted,
        "increments_ambiguous": tally.increments_ambiguous,
        "entries_count_mismatch": len(mismatched),
        "rejected_23514": tally.rejected_23514,
        "crashes": crashes,
        "oracle_rows_after_recovery": after_recovery,
        "commits_after_restart": tally.commits_after_restart,
        "ambiguous_commits": tally.ambiguous_commits,
        "connection_errors": dict(tally.connection_errors),
        "reconnect_attempts": tally.reconnects,
        "flow_replaced_retries": tally.flow_replaced_retries,
        "retries_after_40P01_40001": tally.retries,
        "library_rows": {"total": library[0], "synced_active": library[1], "orphaned": library[2]},
        "ops": dict(sorted(tally.ops.items())),
        "unexpected": dict(tally.unexpected),
        "samples": tally.samples,
        "server_log_deadlocks": deadlock_log[:3],
        "deadlock_statements": deadlock_pairs(deadlock_log),
        "count_mismatch_sample (applied, counted, ambiguous)": dict(list(mismatched.items())[:5]),
        "oracle_sample": [list(map(str, r)) for r in final[:5]] or mid_run_sample,
        "seed": SEED,
        "ordered_clients": ORDERED_CLIENTS,
        "hung_sessions": hung,
        "session_failures": failures,
    }
    RESULTS[run] = report
    line = " ".join(f"{k}={v}" for k, v in report.items() if k in (
        "run", "postgres", "sessions", "seconds", "transactions", "deadlocks", "unexpected_sqlstates",
        "oracle_rows", "oracle_rows_mid_run_max", "increments_applied", "increments_counted",
        "increments_ambiguous", "entries_count_mismatch", "rejected_23514", "crashes", "oracle_rows_after_recovery",
        "commits_after_restart", "seed"))
    print(f"\nSOAK: {line}")
    print(f"SOAK-detail ({run}): deadlocks_by_victim={report['deadlocks_by_victim']} "
          f"ops={report['ops']} connection_errors={report['connection_errors']} "
          f"library={report['library_rows']} unexpected={report['unexpected']}")
    for key, sample in tally.samples.items():
        print(f"SOAK-sample ({run}) {key}: {sample}")
    if deadlock_log:
        print(f"SOAK-deadlocks ({run}), statements involved (server log): {report['deadlock_statements']}")
        print(f"SOAK-server-log ({run}), first of {len(deadlock_log)} deadlocks:\n{deadlock_log[0]}")
    path = os.environ.get("STEPSYNC_SOAK_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=2, default=str)
    return report


def problems(report: dict) -> list[str]:
    """Every property the run broke, with its evidence (all of them, not just the first)."""
    found = []

    def expect(ok: bool, what: str, evidence=None) -> None:
        if not ok:
            found.append(what if evidence is None else f"{what}: {evidence}")

    expect(not report["session_failures"], "a session crashed", report["session_failures"])
    expect(not report["hung_sessions"], "sessions did not finish", report["hung_sessions"])
    expect(report["deadlocks"] == 0, f"{report['deadlocks']} deadlocks (40P01)", report["deadlock_statements"])
    expect(report["unexpected"] == {}, f"unexpected SQLSTATEs {report['unexpected']}", report["samples"])
    expect(report["oracle_rows"] == 0, f"the oracle found {report['oracle_rows']} differences at the end",
           report["oracle_sample"])
    expect(report["oracle_rows_mid_run_max"] == 0,
           f"the oracle found up to {report['oracle_rows_mid_run_max']} differences during the run",
           report["oracle_sample"])
    expect(report["oracle_checks_mid_run"] > 0, "the oracle never ran during the run")
    applied, counted, ambiguous = (report["increments_applied"], report["increments_counted"],
                                   report["increments_ambiguous"])
    expect(applied <= counted <= applied + ambiguous,
           f"usage counts: applied {applied}, counted {counted}, ambiguous {ambiguous}")
    expect(report["entries_count_mismatch"] == 0, f"{report['entries_count_mismatch']} rows with a wrong usage_count",
           report["count_mismatch_sample (applied, counted, ambiguous)"])
    # the soak did something: committed work of each kind, and refused every bad publish
    expect(report["transactions"] > 0 and applied > 0, "nothing committed")
    expect(report["ops"].get("publish", 0) > 0 and report["ops"].get("delete_recreate", 0) > 0,
           "no publish or no delete-and-recreate committed", report["ops"])
    expect(report["rejected_23514"] > 0, "no bad publish was tried")
    return found


def test_soak_concurrent_writers(cluster):
    report = soak(cluster, "plain", crashes=0)
    found = problems(report)
    if report["increments_ambiguous"] or report["increments_counted"] != report["increments_applied"]:
        found.append(f"without a crash, counted {report['increments_counted']} must equal applied "
                     f"{report['increments_applied']} (ambiguous {report['increments_ambiguous']})")
    assert not found, "\n".join(found)


def test_soak_across_a_crash(cluster):
    report = soak(cluster, "crash", crashes=int(os.environ.get("STEPSYNC_SOAK_CRASHES", "1")))
    found = problems(report)
    if report["oracle_rows_after_recovery"] != [0] * report["crashes"]:
        found.append(f"oracle rows right after each recovery: {report['oracle_rows_after_recovery']}")
    if not report["commits_after_restart"]:
        found.append("the sessions did not reconnect and go on after the restart")
    assert not found, "\n".join(found)
