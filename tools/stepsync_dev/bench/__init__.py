"""`stepsync bench`: what the sync costs writers, and how that grows.

One server, one run. For each scenario the variants run interleaved, round by
round (the order rotates each round), and the report gives medians and ratios
of medians taken in this run; absolute times on a shared 2-core machine mean
little, ratios mean more. Publishing variants, all writing identical library
rows (checked first):

  floor       the bare UPDATE that publishes, with the sync triggers off
  stepsync    the same UPDATE, the trigger doing the sync
  app_side    the original design: the application reads the tree, extracts
              the entries in Python and upserts them with executemany, one
              transaction
  limit       one hand-written INSERT ... SELECT ... ON CONFLICT into the
              product's step_library (its indexes, foreign keys and the row
              triggers that fire for the sync's writes), no checks and no
              retirement: the most this work can cost inside PostgreSQL on
              this schema
  limit_bare  the same statement into a bare copy of step_library (the same
              columns and the upsert's unique key, nothing else): the gap
              between the two limits is what the schema itself costs

No-op writes (a status re-set, a full-row PUT that sends every column back
with its current value, a re-save of the same structure, a rename) compare:

  bare        the same UPDATE on the same rows of trees, in a session where
              no trigger of ours fires (the application's own foreign keys
              still do)
  stepsync    the UPDATE on trees, every trigger of ours in place

Wall time is measured around the client's transaction; CPU is the client
process's plus the server backend's (/proc/<pid>/stat).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.table import Table

from stepsync import database
from stepsync.resync import resync
from stepsync_dev.bench import flows as bench_flows
from stepsync_dev.bench import sql as bench_sql

console = Console()
TICK = os.sysconf("SC_CLK_TCK")
PUBLISH_VARIANTS = ("floor", "stepsync", "app_side", "limit", "limit_bare")
NO_OP_SAMPLES = 20
Structure = dict[str, Any] | str
"""A flow's tree_structure: a JSON-able dict, or JSON text (documents Python's json cannot nest)."""


def one(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The one row a statement returns."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by server process PID."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Sample:
    wall: float
    cpu_client: float
    cpu_server: float

    @property
    def cpu(self) -> float:
        return self.cpu_client + self.cpu_server


@dataclass
class Result:
    scenario: str
    variant: str
    samples: list[Sample] = field(default_factory=list)
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)


def without_sync_triggers_setup(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Let a session run with the sync's triggers off and everything else on.

    Sessions of the floor, app_side and limit variants run with
    session_replication_role = replica, which switches off ordinary triggers:
    the sync triggers and the read-only guards (app_side and limit write synced
    rows themselves). The foreign-key checks, the updated_at triggers and the
    triggers that store each step's search vector are set to fire ALWAYS, in this
    benchmark database only, so that every variant pays for them alike.
    """
    for table in ("trees", "step_library"):
        names = [r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass"
            " AND (tgisinternal OR tgname IN ('t10_set_updated_at', 't11_set_updated_at_structure',"
            " 't20_search_vector_insert', 't21_search_vector_update', 't22_search_vector_usage'))",
            (f"public.{table}",))]
        for name in names:
            conn.execute(f'ALTER TABLE public.{table} ENABLE ALWAYS TRIGGER "{name}"')


class Session:
    """One connection, its backend pid, optionally with the sync triggers off (see without_sync_triggers_setup)."""

    def __init__(self, url: str, *, triggers: bool = True) -> None:
        self.conn = database.connect(url, autocommit=True)
        self.pid: int = one(self.conn.execute("SELECT pg_backend_pid()"))[0]
        if not triggers:
            self.conn.execute("SET session_replication_role = replica")

    def timed(self, work: Callable[[], object]) -> Sample:
        server0, client0, wall0 = backend_cpu(self.pid), time.process_time(), time.perf_counter()
        work()
        wall = time.perf_counter() - wall0
        return Sample(wall, time.process_time() - client0, backend_cpu(self.pid) - server0)


class Bench:
    def __init__(self, url: str, rounds: int) -> None:
        self.url = url
        self.rounds = rounds
        with database.connect(url, autocommit=True) as conn:
            without_sync_triggers_setup(conn)
        self.sync = Session(url)
        self.plain = Session(url, triggers=False)
        self.admin = self.sync.conn
        account: uuid.UUID = one(self.admin.execute("INSERT INTO accounts (name) VALUES ('Bench') RETURNING id"))[0]
        self.account = account
        self.author: uuid.UUID = one(self.admin.execute(
            "INSERT INTO users (email, account_id) VALUES (%s, %s) RETURNING id",
            (f"bench-{uuid.uuid4()}@example.com", account)))[0]
        self.admin.execute(bench_sql.BARE_LIBRARY_DDL)
        self.results: dict[tuple[str, str], Result] = {}
        self.profile: dict[str, Any] = {}
        self.pgbench: dict[str, float] = {}
        self.search: dict[str, float] = {}
        self.limit_resync_rate = 0.0
        self.notes: list[str] = []
        self.rewritten = (0, 0)

    # -- flows -------------------------------------------------------------
    def draft(self, tree_type: str, structure: Structure, name: str = "bench") -> uuid.UUID:
        doc = structure if isinstance(structure, str) else json.dumps(structure)
        tree: uuid.UUID = one(self.admin.execute(
            "INSERT INTO trees (name, tree_type, tree_structure, account_id, author_id)"
            " VALUES (%s, %s, %s::jsonb, %s, %s) RETURNING id",
            (name, tree_type, doc, self.account, self.author)))[0]
        return tree

    # -- the ways to publish -------------------------------------------------
    def publish_floor(self, tree: uuid.UUID) -> None:
        self.plain.conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))

    def publish_stepsync(self, tree: uuid.UUID) -> None:
        self.sync.conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))

    def publish_limit(self, tree: uuid.UUID, tree_type: str, table: str = "step_library") -> None:
        with self.plain.conn.transaction():
            self.plain.conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
            self.plain.conn.execute(bench_sql.limit_sql(tree_type, table), {"tree": tree})

    def publish_app_side(self, tree: uuid.UUID) -> None:
        conn = self.plain.conn
        with conn.transaction():
            tree_type, structure, is_public, account, author = one(conn.execute(
                "SELECT tree_type, tree_structure, is_public, account_id, author_id FROM trees WHERE id = %s",
                (tree,)))
            conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
            rows = [(title, step_type, Jsonb(content), visibility, author, account, tree, node_id)
                    for node_id, title, step_type, content, visibility
                    in bench_flows.app_side_entries(tree_type, structure, is_public)]
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO step_library AS s (title, step_type, content, visibility, created_by, account_id,"
                    " is_flow_synced, source_tree_id, source_node_id, last_synced_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, true, %s, %s, now())"
                    " ON CONFLICT (source_tree_id, source_node_id) DO UPDATE SET title = EXCLUDED.title,"
                    " step_type = EXCLUDED.step_type, content = EXCLUDED.content, visibility = EXCLUDED.visibility,"
                    " account_id = EXCLUDED.account_id, last_synced_at = EXCLUDED.last_synced_at, is_active = true",
                    rows)

    def publish(self, variant: str, tree: uuid.UUID, tree_type: str) -> None:
        if variant == "floor":
            self.publish_floor(tree)
        elif variant == "stepsync":
            self.publish_stepsync(tree)
        elif variant == "limit":
            self.publish_limit(tree, tree_type)
        elif variant == "limit_bare":
            self.publish_limit(tree, tree_type, bench_sql.BARE_LIBRARY)
        elif variant == "app_side":
            self.publish_app_side(tree)
        else:
            raise ValueError(f"unknown publishing variant {variant!r}: one of {', '.join(PUBLISH_VARIANTS)}")

    def rows(self, tree: uuid.UUID, table: str = "step_library") -> list[tuple[Any, ...]]:
        return self.admin.execute(
            "SELECT source_node_id, title, step_type, content, visibility, account_id, created_by, is_active,"
            f" is_flow_synced FROM public.{table} WHERE source_tree_id = %s ORDER BY source_node_id",
            (tree,)).fetchall()

    # -- measuring ----------------------------------------------------------
    def record(self, scenario: str, variant: str, sample: Sample, note: str = "") -> None:
        result = self.results.setdefault((scenario, variant), Result(scenario, variant))
        result.samples.append(sample)
        result.note = note or result.note

    def check_identical(self) -> None:
        """Every variant writes the same library rows for the same flows (before anything is timed)."""
        cases: list[tuple[str, Structure]] = [("procedural", bench_flows.procedural(120)),
                                              ("troubleshooting", bench_flows.troubleshooting(300))]
        for tree_type, structure in cases:
            written = {}
            for variant in ("stepsync", "app_side", "limit", "limit_bare"):
                tree = self.draft(tree_type, structure)
                self.publish(variant, tree, tree_type)
                table = bench_sql.BARE_LIBRARY if variant == "limit_bare" else "step_library"
                written[variant] = self.rows(tree, table)
            assert written["stepsync"], tree_type
            for variant in ("app_side", "limit", "limit_bare"):
                if written[variant] != written["stepsync"]:
                    raise AssertionError(f"{variant} writes other rows than stepsync for a {tree_type} flow")
        self.notes.append("Checked first: stepsync, app_side and limit write identical rows for a 120-step"
                          " procedure and a 300-node troubleshooting tree (limit_bare too, into its bare table).")

    def first_publish(self, scenario: str, tree_type: str, structure: Structure,
                      variants: list[str]) -> dict[str, list[uuid.UUID]]:
        """Publish fresh drafts of STRUCTURE with each variant, interleaved; returns the published ids."""
        published: dict[str, list[uuid.UUID]] = {v: [] for v in variants}
        doc = structure if isinstance(structure, str) else json.dumps(structure)
        for r in range(self.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            drafts = {v: self.draft(tree_type, doc) for v in order}
            for variant in order:
                session = self.sync if variant == "stepsync" else self.plain
                def work(variant: str = variant, tree: uuid.UUID = drafts[variant]) -> None:
                    self.publish(variant, tree, tree_type)

                sample = session.timed(work)
                self.record(scenario, variant, sample)
                published[variant].append(drafts[variant])
        return published

    def no_op(self, scenario: str, trees: list[uuid.UUID],
              make_sql: Callable[[str, uuid.UUID, int], tuple[str, tuple[Any, ...]]], repeat: int = 1) -> None:
        """Run an UPDATE on already-published flows, interleaved on the same rows: with every trigger of
        ours (stepsync) and with none of them (bare: the replica session, once updated_at's trigger on trees
        fires in origin sessions only again; the application's foreign keys still fire). A sample is the
        mean of REPEAT runs (statements far below a millisecond need several to be timed)."""
        self.admin.execute("ALTER TABLE public.trees ENABLE TRIGGER t10_set_updated_at")
        try:
            self._no_op(scenario, trees, make_sql, repeat)
        finally:
            self.admin.execute("ALTER TABLE public.trees ENABLE ALWAYS TRIGGER t10_set_updated_at")

    def _no_op(self, scenario: str, trees: list[uuid.UUID],
               make_sql: Callable[[str, uuid.UUID, int], tuple[str, tuple[Any, ...]]], repeat: int) -> None:
        for r in range(max(len(trees), NO_OP_SAMPLES)):   # several samples a flow: these statements are short
            tree = trees[r % len(trees)]
            for variant in (("bare", "stepsync") if r % 2 == 0 else ("stepsync", "bare")):
                sql, params = make_sql("trees", tree, r)
                session = self.sync if variant == "stepsync" else self.plain

                def work(session: Session = session, sql: str = sql, params: tuple[Any, ...] = params) -> None:
                    for _ in range(repeat):
                        session.conn.execute(sql, params)

                sample = session.timed(work)
                self.record(scenario, variant, Sample(sample.wall / repeat, sample.cpu_client / repeat,
                                                      sample.cpu_server / repeat))

    def ratio(self, scenario: str, a: str, b: str, scenario_b: str | None = None, cpu: bool = False) -> float:
        x = self.results[(scenario, a)]
        y = self.results[(scenario_b or scenario, b)]
        return (x.cpu / y.cpu) if cpu else (x.wall / y.wall)


PGBENCH_SCRIPT = """
BEGIN;
{setup}
UPDATE trees SET status = 'published'
 WHERE id = (SELECT id FROM trees WHERE name = '{name}' AND status = 'draft'
              ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED);
END;
"""


def pgbench_publishers(bench: Bench, per_client: int) -> dict[str, float]:
    """4 pgbench clients, each transaction publishing a distinct 100-step draft: tps with and without the sync."""
    from stepsync.pgbin import find_bin_dir

    pgbench = find_bin_dir() / "pgbench"
    doc = json.dumps(bench_flows.procedural(100))
    libpq_url, _ = database.split_url(bench.url)
    results = {}
    for variant, setup in (("floor", "SET LOCAL session_replication_role = replica;"), ("stepsync", "")):
        name = f"pgbench {variant}"
        for _ in range(4 * per_client):
            bench.draft("procedural", doc, name=name)
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            script.write(PGBENCH_SCRIPT.format(setup=setup, name=name))
        try:
            out = subprocess.run([str(pgbench), "-n", "-c", "4", "-j", "2", "-t", str(per_client), "-f", script.name,
                                  libpq_url], capture_output=True, text=True, check=True).stdout
        finally:
            os.unlink(script.name)
        tps = next(float(line.split("=")[1].split()[0]) for line in out.splitlines()
                   if line.startswith("tps") and "without" in line)
        latency = next((float(line.split("=")[1].split()[0]) for line in out.splitlines()
                        if line.startswith("latency average")), 0.0)
        results[variant] = tps
        results[f"{variant}_latency_ms"] = latency
    left = one(bench.admin.execute("SELECT count(*) FROM trees WHERE name LIKE 'pgbench %' AND status = 'draft'"))[0]
    if left:
        raise AssertionError(f"pgbench left {left} drafts unpublished")
    return results


SEARCH_WORDS = ("restart", "replica", "backup", "certificate", "firewall", "rotate", "drain", "failover")


def private_kib(pid: int) -> int:
    """Anonymous memory of process PID in KiB (smaps_rollup Pss_Anon): the backend's own heap.

    Unlike VmHWM or RSS this leaves out the shared buffers the backend touched. A
    backend rarely returns freed memory to the system, so read after a statement
    it approximates that statement's peak.
    """
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss_Anon:"):
                return int(line.split()[1])
    return 0


PROFILE_SYNC = "stepsync._sync: the whole statement (nodes, pairing, upsert, retire; FK checks run after it)"
PROFILE_NODES = "stepsync._nodes: extraction and checks (one query)"
PROFILE_FK = "foreign-key checks (3 a row: trees, users, accounts)"
# How profile_publish recognises each statement auto_explain logs: every marker must occur in the logged
# query text. A publish must produce every group; when a refactor changes the SQL so that a marker no longer
# matches, profile_publish raises instead of reporting an empty group.
PROFILE_GROUPS = {
    PROFILE_FK: ("FROM ONLY", "FOR KEY SHARE"),
    PROFILE_NODES: ("v_rows := ARRAY(",),
    PROFILE_SYNC: ("FROM stepsync._nodes(p_tree_id",),
}


def profile_publish(bench: Bench, tree_type: str, structure: Structure) -> dict[str, Any]:
    """One publish under auto_explain (nested statements, analyze, buffers): where the time goes.

    Runs in a fresh session, so that the backend's private memory (Pss_Anon, see private_kib) read after the
    publish is the publish's. Statements are grouped by PROFILE_GROUPS; a group that matched nothing is an
    error (the SQL changed under the markers), never a silently missing line.
    """
    session = Session(bench.url)
    notices: list[str] = []
    session.conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    tree = bench.draft(tree_type, structure)
    baseline = private_kib(session.pid)
    session.conn.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_analyze = on", "log_buffers = on", "log_timing = off",
                    "log_nested_statements = on", "log_level = notice"):
        session.conn.execute(f"SET auto_explain.{setting}")
    session.conn.execute("SET log_temp_files = 0")          # every temporary file, reported to us:
    session.conn.execute("SET client_min_messages = log")   # a sort or tuplestore that spilled to disk
    wall = session.timed(lambda: session.conn.execute(
        "UPDATE trees SET status = 'published' WHERE id = %s", (tree,))).wall
    peak = private_kib(session.pid)
    groups: dict[str, float] = {}
    sort_memory = 0
    external = 0
    temp_files = [m for m in notices if m.startswith("temporary file")]
    for message in notices:
        lines = message.splitlines()
        try:
            duration = float(lines[0].split()[1])
        except (IndexError, ValueError):
            continue
        key = next((name for name, markers in PROFILE_GROUPS.items() if all(m in message for m in markers)), None)
        if key is None:
            continue
        groups[key] = groups.get(key, 0.0) + duration
        for line in lines:
            if "Sort Method" in line:
                if "external" in line:
                    external += 1
                if "Memory:" in line:
                    sort_memory = max(sort_memory, int(line.split("Memory:")[1].split("kB")[0]))
    session.conn.close()
    missing = [name for name in PROFILE_GROUPS if name not in groups]
    if missing:
        raise RuntimeError(f"profile of a {tree_type} publish: no logged statement matched {missing}; the SQL"
                           " changed under the markers, update PROFILE_GROUPS in stepsync_dev/bench/__init__.py")
    return {"wall_ms": wall * 1000, "groups": groups, "external_sorts": external, "max_sort_kb": sort_memory,
            "temp_files": temp_files,
            "backend_peak_kib": peak, "backend_baseline_kib": baseline}


def edit_one_percent(structure: dict[str, Any], round_no: int) -> dict[str, Any]:
    steps = [dict(s) for s in structure["steps"]]
    synced = [i for i, s in enumerate(steps) if s.get("type") == "procedure_step"]
    for i in synced[:: 100]:
        steps[i]["title"] = f"{steps[i]['title']} (edited in round {round_no})"
    return {"steps": steps}


def run(url: str, rounds: int, quick: bool, output: Path | None) -> int:
    """Run every scenario on the database at URL; print the report and write it to OUTPUT."""
    bench = Bench(url, rounds)
    server_version: str = one(bench.admin.execute("SHOW server_version"))[0]
    console.print(f"[bold]stepsync bench[/bold]: PostgreSQL {server_version}, {rounds} rounds")
    bench.check_identical()
    variants = list(PUBLISH_VARIANTS)
    sizes = [10, 100, 1000] if quick else [10, 100, 1000, 10000]
    published: dict[int, dict[str, list[uuid.UUID]]] = {}
    structures = {n: bench_flows.procedural(n) for n in sizes}
    for n in sizes:
        console.print(f"  procedural publish, {n} steps")
        published[n] = bench.first_publish(f"publish {n}", "procedural", structures[n], variants)

    big = sizes[-1]
    edits = []
    for r, tree in enumerate(published[big]["stepsync"]):
        edited = edit_one_percent(structures[big], r)
        edits.append((tree, json.dumps(edited)))
    console.print(f"  republish with 1% edited, {big} steps")
    for tree, doc in edits:
        xmins: dict[str, str] = dict(bench.admin.execute("SELECT source_node_id, xmin::text FROM step_library"
                                         " WHERE source_tree_id = %s", (tree,)).fetchall())
        sample = bench.sync.timed(partial(bench.sync.conn.execute,
                                          "UPDATE trees SET tree_structure = %s::jsonb WHERE id = %s", (doc, tree)))
        bench.record(f"republish 1% of {big}", "stepsync", sample)
        after: dict[str, str] = dict(bench.admin.execute("SELECT source_node_id, xmin::text FROM step_library"
                                         " WHERE source_tree_id = %s", (tree,)).fetchall())
        rewritten = len([k for k in after if after[k] != xmins.get(k)])
    bench.rewritten = (rewritten, len(after))
    bench.notes.append(f"Republishing a {big}-step flow with 1% of its steps edited rewrote {rewritten} rows"
                       f" (of {len(after)}); every other entry kept its row version (xmin).")

    console.print(f"  no-op writes and a rename, {big} steps")
    trees = published[big]["stepsync"]
    same_doc = json.dumps(structures[big])
    for tree in trees:  # bring their structure back to the original, so that "unchanged" is really unchanged
        bench.sync.conn.execute("UPDATE trees SET tree_structure = %s::jsonb WHERE id = %s", (same_doc, tree))
    columns = ("name", "description", "tree_type", "tree_structure", "status", "is_active", "is_public",
               "account_id", "author_id", "created_at", "updated_at")
    current: dict[uuid.UUID, tuple[Any, ...]] = {tree: one(bench.admin.execute(
        f"SELECT {', '.join(c + '::text' if c == 'tree_structure' else c for c in columns)} FROM trees"
        " WHERE id = %s", (tree,))) for tree in trees}
    put = ", ".join(f"{c} = %s::jsonb" if c == "tree_structure" else f"{c} = %s" for c in columns)
    before_no_ops: dict[uuid.UUID, str] = dict(bench.admin.execute(
        "SELECT id, xmin::text FROM step_library WHERE source_tree_id = ANY(%s)", (trees,)).fetchall())
    bench.no_op(f"status re-set {big}", trees, lambda table, tree, r: (
        f"UPDATE public.{table} SET status = 'published' WHERE id = %s", (tree,)), repeat=50)
    bench.no_op(f"full PUT {big}", trees, lambda table, tree, r: (
        f"UPDATE public.{table} SET {put} WHERE id = %s", (*current[tree], tree)))
    bench.no_op(f"republish unchanged {big}", trees, lambda table, tree, r: (
        f"UPDATE public.{table} SET tree_structure = %s::jsonb WHERE id = %s", (same_doc, tree)))
    bench.no_op(f"rename {big}", trees, lambda table, tree, r: (
        f"UPDATE public.{table} SET name = 'renamed ' || clock_timestamp() WHERE id = %s", (tree,)), repeat=50)
    after_no_ops: dict[uuid.UUID, str] = dict(bench.admin.execute(
        "SELECT id, xmin::text FROM step_library WHERE source_tree_id = ANY(%s)", (trees,)).fetchall())
    touched = len([k for k, v in after_no_ops.items() if before_no_ops.get(k) != v])
    bench.notes.append(f"The no-op writes and renames of {len(trees)} {big}-step flows rewrote {touched} library rows"
                       f" (of {len(after_no_ops)}).")

    console.print("  troubleshooting publish, 10,000 nodes" if not quick else "  troubleshooting publish, 1,000 nodes")
    tree_nodes = 1000 if quick else 10000
    bench.first_publish(f"troubleshooting {tree_nodes}", "troubleshooting", bench_flows.troubleshooting(tree_nodes),
                        list(PUBLISH_VARIANTS))

    console.print("  5,000-deep chain")
    chain = bench_flows.chain_text(5000)
    for _ in range(rounds):
        tree = bench.draft("troubleshooting", chain)
        bench.record("chain 5000 deep", "stepsync", bench.sync.timed(partial(bench.publish_stepsync, tree)))

    console.print("  resync 1,000 flows x 50 steps" if not quick else "  resync 100 flows x 50 steps")
    flows_n = 100 if quick else 1000
    doc50 = json.dumps(bench_flows.procedural(50))
    ids = [bench.draft("procedural", doc50, name=f"resync {i}") for i in range(flows_n)]
    bench.plain.conn.execute("UPDATE trees SET status = 'published' WHERE id = ANY(%s)", (ids,))
    entries_before: int = one(bench.admin.execute("SELECT count(*) FROM step_library"))[0]
    sample = bench.sync.timed(lambda: resync(bench.url, ids, batch=100))
    written: int = one(bench.admin.execute("SELECT count(*) FROM step_library"))[0] - entries_before
    bench.record(f"resync {flows_n} x 50", "stepsync", sample)
    resync_rate = written / sample.wall

    # The same flows resynced by the hand-written limit statement: what any set-based resync costs here.
    limit_ids = [bench.draft("procedural", doc50, name=f"resync limit {i}") for i in range(flows_n)]
    bench.plain.conn.execute("UPDATE trees SET status = 'published' WHERE id = ANY(%s)", (limit_ids,))

    def limit_resync() -> None:
        for start in range(0, len(limit_ids), 100):
            with bench.plain.conn.transaction():
                for tree in limit_ids[start:start + 100]:
                    bench.plain.conn.execute(bench_sql.limit_sql("procedural"), {"tree": tree})

    sample = bench.plain.timed(limit_resync)
    bench.record(f"resync {flows_n} x 50", "limit", sample)
    bench.limit_resync_rate = written / sample.wall

    console.print("  4 concurrent pgbench clients publishing distinct 100-step flows")
    bench.pgbench = pgbench_publishers(bench, 40 if quick else 150)

    # Search has a benchmark of its own (stepsync_dev.bench.search), on a database of its own: `stepsync bench`
    # runs it after this one and appends its section to the report.

    console.print(f"  profile of one {big}-step publish (auto_explain)")
    bench.profile = profile_publish(bench, "procedural", structures[big])
    report = Report(bench, server_version, sizes, big, tree_nodes, flows_n, resync_rate, written)
    report.print()
    if output is not None:
        output.write_text(report.markdown(), encoding="utf-8")
        console.print(f"report written to {output}")
    return 0


class Report:
    def __init__(self, bench: Bench, server_version: str, sizes: list[int], big: int, tree_nodes: int, flows_n: int,
                 resync_rate: float, written: int) -> None:
        self.b, self.server_version, self.sizes, self.big = bench, server_version, sizes, big
        self.tree_nodes, self.flows_n, self.resync_rate, self.written = tree_nodes, flows_n, resync_rate, written

    def table_rows(self) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for (scenario, variant), result in self.b.results.items():
            rows.append((scenario, variant, f"{result.wall * 1000:.2f}", f"{result.cpu * 1000:.0f}",
                         str(len(result.samples))))
        return rows

    def targets(self) -> list[tuple[str, str, bool]]:
        b, big = self.b, self.big
        out = []
        for n in [s for s in self.sizes if s >= 1000]:
            r = b.ratio(f"publish {n}", "stepsync", "limit")
            out.append((f"publish {n}: stepsync / limit (the product's schema)", f"{r:.2f} (target <= 1.3)", r <= 1.3))
            r = b.ratio(f"publish {n}", "stepsync", "limit_bare")
            out.append((f"publish {n}: stepsync / limit_bare (a bare table)", f"{r:.2f}", True))
            r = b.ratio(f"publish {n}", "limit", "limit_bare")
            out.append((f"publish {n}: limit / limit_bare (what the schema costs the same statement)", f"{r:.2f}",
                        True))
            r = b.ratio(f"publish {n}", "stepsync", "app_side")
            out.append((f"publish {n}: stepsync / app_side, wall", f"{r:.2f} (target < 1)", r < 1))
            r = b.ratio(f"publish {n}", "stepsync", "app_side", cpu=True)
            out.append((f"publish {n}: stepsync / app_side, CPU client+server", f"{r:.2f} (target <= 0.5)", r <= 0.5))
        for scenario in (f"status re-set {big}", f"full PUT {big}", f"republish unchanged {big}", f"rename {big}"):
            r = b.ratio(scenario, "stepsync", "bare")
            out.append((f"{scenario}: stepsync / bare UPDATE", f"{r:.2f} (target <= 1.3)", r <= 1.3))
        r = b.ratio(f"republish 1% of {big}", "stepsync", "stepsync", scenario_b=f"publish {big}")
        out.append((f"republish 1% of {big} / first publish", f"{r:.2f} (target <= 0.25)", r <= 0.25))
        r = b.ratio(f"troubleshooting {self.tree_nodes}", "stepsync", "limit")
        out.append((f"troubleshooting {self.tree_nodes}: stepsync / path-query limit", f"{r:.2f} (target <= 1.3)",
                    r <= 1.3))
        chain = b.results[("chain 5000 deep", "stepsync")].wall
        out.append(("5,000-deep chain publish", f"{chain:.3f} s (target < 0.5 s)", chain < 0.5))
        out.append((f"resync {self.flows_n} x 50", f"{self.resync_rate:,.0f} entries/s (target >= 40,000)",
                    self.resync_rate >= 40000))
        resync = b.ratio(f"resync {self.flows_n} x 50", "stepsync", "limit")
        out.append((f"resync {self.flows_n} x 50 by the limit statement (for comparison)",
                    f"{b.limit_resync_rate:,.0f} entries/s; stepsync / limit {resync:.2f}", True))
        if b.pgbench:
            out.append(("4 pgbench clients publishing 100-step flows",
                        f"{b.pgbench['stepsync']:,.1f} tps with the sync ({b.pgbench['stepsync_latency_ms']:.1f} ms"
                        f" average), {b.pgbench['floor']:,.1f} tps bare", True))
        if b.search:
            for label, ms in b.search.items():
                if label in ("entries", "uses index") or label.endswith(" hits"):
                    continue
                out.append((f"search_steps over {b.search['entries']:,.0f} entries: {label}",
                            f"{ms:.1f} ms ({b.search[label + ' hits']:.0f} rows returned)", True))
            out.append(("search_steps: the GIN index is used", "yes" if b.search["uses index"] else "no",
                        bool(b.search["uses index"])))
        if 10000 in self.sizes and 1000 in self.sizes:
            r = b.ratio("publish 10000", "stepsync", "stepsync", scenario_b="publish 1000")
            out.append(("growth: publish 10,000 / 1,000 steps", f"{r:.2f} (target <= 11)", r <= 11))
        return out

    def print(self) -> None:
        table = Table(title="medians", header_style="bold")
        for column in ("scenario", "variant", "wall ms", "cpu ms", "n"):
            table.add_column(column, justify="right" if column != "scenario" and column != "variant" else "left")
        for row in self.table_rows():
            table.add_row(*row)
        console.print(table)
        targets = Table(title="targets (ratios of medians, this run)", header_style="bold")
        for column in ("measure", "value", "met"):
            targets.add_column(column)
        for name, value, met in self.targets():
            targets.add_row(name, value, "yes" if met else "[red]no[/red]")
        console.print(targets)
        for note in self.b.notes + self.profile_lines():
            console.print(f"- {note}")

    def markdown(self) -> str:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                       platform.processor())
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
        lines = [
            "# Benchmarks", "",
            f"`stepsync bench` on {time.strftime('%Y-%m-%d')}: PostgreSQL {self.server_version}, "
            f"{os.cpu_count()} cores ({cpu}), {memory} GiB,"
            f" Python {platform.python_version()}, {self.b.rounds} rounds, variants interleaved.", "",
            "| scenario | variant | wall ms (median) | CPU ms client+server (median) | rounds |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [f"| {s} | {v} | {w} | {c} | {n} |" for s, v, w, c, n in self.table_rows()]
        lines += ["", "| target | value | met |", "|---|---|---|"]
        lines += [f"| {name} | {value} | {'yes' if met else 'no'} |" for name, value, met in self.targets()]
        lines += [""] + [f"- {note}" for note in self.b.notes] + [""]
        lines += ["## Reading the figures", ""] + [f"- {line}" for line in self.reading()] + [""]
        lines += ["## Where the time goes", "",
                  f"One {self.big}-step publish under auto_explain (nested statements, timing off),"
                  " in a fresh session:", ""]
        lines += [f"- {line}" for line in self.profile_lines()] + [""]
        return "\n".join(lines)

    def reading(self) -> list[str]:
        """The report's prose, every figure in it taken from this run."""
        b, big = self.b, self.big
        wall = {key: result.wall * 1000 for key, result in b.results.items()}
        out = []
        publish = wall[(f"publish {big}", "stepsync")]
        limit, bare = wall[(f"publish {big}", "limit")], wall[(f"publish {big}", "limit_bare")]
        groups = b.profile.get("groups", {}) if b.profile else {}
        extraction = ""
        if PROFILE_NODES in groups:
            nodes = groups[PROFILE_NODES]
            extraction = (f" In the profile below the extraction and checks (`stepsync._nodes`, one set-based query)"
                          f" took {nodes:.0f} ms, {nodes * 1000 / big:.1f} us a step; the rest of the sync's statement"
                          f" is the pairing with existing entries and the writes.")
        out.append(
            f"A {big:,}-step publish took {publish:.0f} ms with the sync, {limit:.0f} ms by the hand-written statement"
            f" on the product's schema and {bare:.0f} ms by the same statement on a bare table: the schema itself"
            f" (the unique and full-text GIN indexes, three foreign keys, the updated_at trigger) costs"
            f" {(limit - bare) * 1000 / big:.0f} us a row written, {100 * (limit - bare) / limit:.0f}% of the"
            f" statement's time, and every variant pays it alike.{extraction}")
        resync = f"resync {self.flows_n} x 50"
        out.append(
            f"Resync wrote {self.resync_rate:,.0f} entries a second, the hand-written statement"
            f" {b.limit_resync_rate:,.0f} (stepsync / limit {b.ratio(resync, 'stepsync', 'limit'):.2f}): both are"
            f" bounded by those per-row writes.")
        republish = wall[(f"republish 1% of {big}", "stepsync")]
        rewritten, entries = getattr(b, "rewritten", (0, 0))
        out.append(
            f"A republish with 1% of {big:,} steps edited took {republish:.0f} ms, {republish / publish:.2f} of a first"
            f" publish: every step is checked again (the checks of docs/contract.md §4 must see them all), but only"
            f" the steps whose JSON or section header changed since the previous structure are shaped and compared"
            f" with their entries, and {rewritten} of {entries} rows were rewritten.")
        no_ops = [(name, f"{name} {big}") for name in ("status re-set", "full PUT", "republish unchanged", "rename")]
        out.append(
            "Writes that change nothing the library depends on do no library work and never read the document"
            " unless the statement sets it (the `UPDATE OF` lists and `WHEN` clauses of the triggers): against the"
            " same UPDATE on the same rows with no trigger of ours, "
            + ", ".join(f"{name} {b.ratio(scenario, 'stepsync', 'bare'):.2f}" for name, scenario in no_ops)
            + f" at {big:,} steps.")
        if b.profile:
            p = b.profile
            sizes = [int(m.rsplit("size", 1)[1]) for m in p["temp_files"] if "size" in m]
            out.append(
                f"In the profiled {big:,}-step publish {p['external_sorts']} sorts went to disk (the largest in memory"
                f" took {p['max_sort_kb']} kB); {len(sizes)} temporary files were written"
                + (f", {sum(sizes) / 2**20:.1f} MiB in all (tuplestores of the shaped entries)" if sizes else "")
                + ".")
        return out

    def profile_lines(self) -> list[str]:
        p = self.b.profile
        if not p:
            return []
        out = [f"{name}: {ms:.1f} ms" for name, ms in sorted(p["groups"].items(), key=lambda kv: -kv[1])]
        out.append(f"whole publish under auto_explain: {p['wall_ms']:.1f} ms")
        sizes = [int(m.rsplit("size", 1)[1]) for m in p["temp_files"] if "size" in m]
        out.append(f"sorts: {p['external_sorts']} external (on disk); the largest in memory took {p['max_sort_kb']} kB"
                   f" (work_mem is 4 MB by default); temporary files: {len(sizes)}"
                   + (f", {sum(sizes) / 2**20:.1f} MiB in all, the largest {max(sizes) / 2**20:.1f} MiB"
                      " (tuplestores of the shaped entries, not sorts)" if sizes else ""))
        groups = p["groups"]
        whole, nodes = groups.get(PROFILE_SYNC, 0.0), groups.get(PROFILE_NODES, 0.0)
        if whole and nodes:
            out.append(f"so the writes (heap, unique and GIN indexes, the upsert and the pairing) take about"
                       f" {whole - nodes:.0f} ms of the statement, the extraction {nodes:.0f} ms")
        out.append(f"backend private memory after the publish: {p['backend_peak_kib'] / 1024:.1f} MiB"
                   f" (the same backend before it: {p['backend_baseline_kib'] / 1024:.1f} MiB;"
                   " shared buffers not counted)")
        return out
