"""stepsync on Citus against stepsync on one node (issue 19): the same work, in one run, side by side.

`run(coordinator_url, rounds=3, output=None)` takes a Citus cluster's coordinator (a superuser URL; the
cluster's workers are those of its pg_dist_node) and starts a throwaway PostgreSQL server of the same
version beside it (stepsync_dev.cluster, the server binaries of $STEPSYNC_PG_BIN, else
/usr/lib/postgresql/<major>/bin when it is there, with the coordinator's durability and memory settings),
then, on fresh databases of both:

  1. publishes one procedural flow of 1,000 steps (stepsync_dev.bench.flows.procedural: a description,
     an expected outcome and two commands a step, a section header every ten);
  2. publishes one flow of 10,000 steps;
  3. publishes 100 flows of 10 steps in one UPDATE (on Citus they sit on shards of both workers: checked);
  4. times stepsync.search_steps at a library of N entries (1,000,000 by default) for the query classes
     and the two users of stepsync_dev.bench.search, and checks that both sides return the same rows in
     the same order.

Publishing variants, on each side:

  stepsync  `UPDATE public.trees SET status = 'published' WHERE ...` on drafts, the sync's triggers doing
            the sync (on Citus the trigger runs on the worker that holds the flow's shard)
  bare      the same UPDATE with the sync's triggers (those calling stepsync.tg_trees__sync) disabled
            by ALTER TABLE ... DISABLE TRIGGER, outside the timing: what the bare table costs

The four (side, variant) pairs run interleaved, round by round, the order rotating each round, after
one untimed warm-up round; the report gives medians and the ratio Citus / one node taken in this run.
Every publish is checked: the stepsync variant wrote every entry (and, in the first round, the same
entries on both sides), the bare variant none. Wall time is measured around the client's statement
(client connections without SSL on both sides; the coordinator reaches its workers as Citus does by
default). Absolute times on a shared 2-core machine, with the coordinator, two workers and the one-node
server on the same cores, mean little; the ratios mean more.

The search library is built once, on the one-node side, by stepsync_dev.bench.search.build_library
(hand-made steps through public.step_library, Zipf words, usages and accounts, its GIN index built
after the rows), then copied row for row (ids, users, accounts, counts, timestamps) into the Citus
database's tables by COPY, the search-vector trigger computing each vector on the worker, the GIN
index built on every shard after the rows; the two libraries' vectors are then compared by a checksum.
The queries (search.choose_terms, 8 a class) and users (search.choose_users) are chosen on one node and
run on both, interleaved query by query, the side going first alternating round by round.

Targets (issue 19): a publish on Citus <= 2 x one node; search p95 on Citus <= 2 x one node.

Manual entry point: PYTHONPATH=tools python -m stepsync_dev.bench.citus URL [ROUNDS] [--search N]
[--shard-count N] [--output FILE.json]. --shard-count lays the Citus side's trees and step_library out in N
shards (create_distributed_table's shard_count) instead of citus.shard_count's.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.table import Table

from stepsync import database
from stepsync import install as stepsync_install
from stepsync.paths import FROZEN_SQL_DIR
from stepsync_dev.bench import flows as bench_flows
from stepsync_dev.bench import search as search_bench

Conn = psycopg.Connection[tuple[Any, ...]]
Log = Callable[[str], None]

console = Console(width=180)
CITUS, ONE_NODE = "citus", "one node"
SIDES = (CITUS, ONE_NODE)
STEPSYNC, BARE = "stepsync", "bare"
MODES = (STEPSYNC, BARE)
TARGET_PUBLISH_RATIO = 2.0
TARGET_SEARCH_P95_RATIO = 2.0
SEARCH_ENTRIES = 1_000_000
QUERIES_PER_CLASS = 8
# The settings the throwaway one-node server takes from the coordinator (the rest are PostgreSQL's defaults
# on both sides, checked in COMPARED_SETTINGS).
COPIED_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers", "wal_level", "max_wal_size",
                   "min_wal_size", "max_prepared_transactions", "work_mem", "maintenance_work_mem",
                   "effective_cache_size", "random_page_cost", "jit")
COMPARED_SETTINGS = (*COPIED_SETTINGS, "server_version", "default_text_search_config", "checkpoint_timeout",
                     "max_parallel_workers_per_gather")
# What docs/scaling.md §2.0 advises for UPDATEs that publish many flows: the coordinator keeps its connections
# to the workers (Citus's default keeps one a worker and closes the others when the transaction ends), so
# the worker backends that run the shards' UPDATEs have compiled the sync's functions already.
WARM_CONNECTIONS = {"citus.max_cached_conns_per_worker": "16"}
# ... or has the UPDATE run its shards' statements one after the other over the one connection a worker Citus
# keeps (warm), instead of opening more (scaling.md §2.0).
ONE_CONNECTION = {"citus.max_adaptive_executor_pool_size": "1"}
PUBLISH_SCENARIOS: tuple[tuple[str, int, int, dict[str, str]], ...] = (
    # (name, flows in the one UPDATE, steps a flow, settings of the Citus side's session)
    ("publish 1,000 steps", 1, 1000, {}),
    ("publish 10,000 steps", 1, 10000, {}),
    ("publish 100 flows x 10 steps, one UPDATE", 100, 10, {}),
    ("publish 100 flows x 10 steps, one UPDATE, connections kept", 100, 10, WARM_CONNECTIONS),
    ("publish 100 flows x 10 steps, one UPDATE, one connection a worker", 100, 10, ONE_CONNECTION),
)
ROW_SQL = ("SELECT source_node_id, title, step_type, content, visibility, is_active, is_flow_synced"
           " FROM public.step_library WHERE source_tree_id = ANY(%s) ORDER BY title, source_node_id")
SEARCH_SQL = "SELECT id, rank, complete FROM stepsync.search_steps(%(user)s, %(q)s, p_step_type => %(kind)s)"
SEARCH_ROWS_SQL = ("SELECT id, title, step_type, content, visibility, usage_count, rating, source_tree_name, rank,"
                   " complete FROM stepsync.search_steps(%(user)s, %(q)s, p_step_type => %(kind)s)")
LIBRARY_COLUMNS = ("id", "title", "step_type", "content", "visibility", "created_by", "account_id", "usage_count",
                   "rating", "rating_count", "is_active", "created_at", "updated_at")
CHECKSUM_SQL = ("SELECT count(*), count(*) FILTER (WHERE is_active),"
                " sum(hashtext(id::text || ' ' || search_vector::text)::bigint)::text FROM public.step_library")


def one(conn: Conn, sql: str, params: Any = None) -> tuple[Any, ...]:
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {sql[:60]!r}")
    return row


def sqlstate(exc: BaseException) -> str:
    return getattr(exc, "sqlstate", None) or "-"


def with_database(url: str, name: str, port: int | None = None) -> str:
    """URL with another database (and another port)."""
    parts = urlsplit(url)
    netloc = parts.netloc if port is None else f"{parts.netloc.rsplit(':', 1)[0]}:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{name}", parts.query, parts.fragment))


def connect(url: str, **params: Any) -> Conn:
    """An autocommit client connection without SSL (the same client path to both sides)."""
    libpq, _ = database.split_url(url)
    conn: Conn = psycopg.connect(make_conninfo(libpq, sslmode="disable", connect_timeout=10, **params),
                                 autocommit=True)
    return conn


# -- the two servers and their databases ---------------------------------------------------------------------------

class CitusCluster:
    """The Citus cluster at COORDINATOR_URL: fresh databases laid out as docs/contract.md §11.1, stepsync installed."""

    def __init__(self, coordinator_url: str, shard_count: int | None = None) -> None:
        self.admin_url = coordinator_url
        self.shard_count = shard_count
        self.created: list[str] = []
        with connect(coordinator_url) as conn:
            self.coordinator = one(conn, "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid = 0")
            self.workers: list[tuple[str, int]] = [
                (str(h), int(p)) for h, p in conn.execute(
                    "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0"
                    " AND isactive ORDER BY nodeport").fetchall()]
            self.citus_version = str(one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'citus'")[0])
            self.settings = read_settings(conn)

    def create(self, name: str, log: Log) -> str:
        """A fresh database NAME on every node, the tables laid out, stepsync installed; its coordinator URL."""
        with connect(self.admin_url) as admin:
            admin.execute("SET citus.enable_create_database_propagation = on")
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        for _, port in self.workers:
            with connect(with_database(self.admin_url, name, port)) as worker:
                worker.execute("CREATE EXTENSION citus")
        url = with_database(self.admin_url, name)
        with connect(url) as conn:
            conn.execute("CREATE EXTENSION citus")
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)", self.coordinator)
            for host, port in self.workers:
                conn.execute("SELECT citus_add_node(%s, %s)", (host, port))
            conn.execute((FROZEN_SQL_DIR / "stepsync_0001" / "application_tables.sql").read_text(encoding="utf-8"))
            conn.execute("ALTER TABLE public.step_library ADD COLUMN tree_key uuid NOT NULL DEFAULT gen_random_uuid()")
            conn.execute("ALTER TABLE public.step_library DROP CONSTRAINT step_library_pkey,"
                         " ADD CONSTRAINT step_library_pkey PRIMARY KEY (tree_key, id)")
            conn.execute("SELECT create_reference_table('public.accounts')")
            conn.execute("SELECT create_reference_table('public.users')")
            if self.shard_count is None:
                conn.execute("SELECT create_distributed_table('public.trees', 'id')")
            else:
                conn.execute("SELECT create_distributed_table('public.trees', 'id', shard_count => %s)",
                             (self.shard_count,))
            conn.execute("SELECT create_distributed_table('public.step_library', 'tree_key',"
                         " colocate_with => 'public.trees')")
        message = stepsync_install.install(url, say=lambda line: None, warn=log)
        log(f"    {name} on Citus: {message}")
        return url

    def drop_all(self) -> None:
        with connect(self.admin_url) as admin:
            admin.execute("SET citus.enable_create_database_propagation = on")
            for name in self.created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def read_settings(conn: Conn) -> dict[str, str]:
    return {str(n): str(s) for n, s in conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
        (list(COMPARED_SETTINGS),)).fetchall()}


@contextmanager
def pg_bin_for(major: str) -> Iterator[None]:
    """$STEPSYNC_PG_BIN pointed at /usr/lib/postgresql/MAJOR/bin (the coordinator's major) while a server starts,
    unless it is set already."""
    chosen = os.environ.get("STEPSYNC_PG_BIN")
    candidate = Path(f"/usr/lib/postgresql/{major}/bin")
    if chosen is None and (candidate / "postgres").exists():
        os.environ["STEPSYNC_PG_BIN"] = str(candidate)
    try:
        yield
    finally:
        if chosen is None:
            os.environ.pop("STEPSYNC_PG_BIN", None)


class OneNode:
    """A throwaway PostgreSQL server with the coordinator's settings (COPIED_SETTINGS)."""

    def __init__(self, settings: dict[str, str]) -> None:
        from stepsync_dev.cluster import ThrowawayCluster

        extra = " ".join(f"-c {name}={settings[name]}" for name in COPIED_SETTINGS if name in settings)
        major = settings["server_version"].split(".")[0]
        with pg_bin_for(major):
            self.cluster = ThrowawayCluster(extra_settings=extra)
        with connect(self.cluster.url()) as conn:
            self.settings = read_settings(conn)

    def create(self, name: str, log: Log) -> str:
        with connect(self.cluster.url()) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = self.cluster.url(name)
        database.migrate(url)
        log(f"    {name} on one node: migrated")
        return url

    def stop(self) -> None:
        self.cluster.stop()


# -- publishing ------------------------------------------------------------------------------------------------------

@dataclass
class Side:
    """One side's publishing database: a client session, the bench's account and author, the sync triggers."""

    label: str
    url: str
    conn: Conn = field(init=False)
    account: uuid.UUID = field(init=False)
    author: uuid.UUID = field(init=False)
    sync_triggers: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.conn = connect(self.url, application_name=f"stepsync bench citus ({self.label})")
        self.account = one(self.conn, "INSERT INTO public.accounts (name) VALUES ('bench') RETURNING id")[0]
        self.author = one(self.conn, "INSERT INTO public.users (email, account_id) VALUES (%s, %s) RETURNING id",
                          (f"bench-{uuid.uuid4()}@example.com", self.account))[0]
        self.sync_triggers = [r[0] for r in self.conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.trees'::regclass AND NOT tgisinternal"
            " AND tgfoid = 'stepsync.tg_trees__sync'::regproc ORDER BY tgname").fetchall()]
        if not self.sync_triggers:
            raise RuntimeError(f"{self.label}: no sync trigger on public.trees")

    def drafts(self, docs: list[str], name: str) -> list[uuid.UUID]:
        with self.conn.transaction():
            return [one(self.conn,
                        "INSERT INTO public.trees (name, tree_type, tree_structure, account_id, author_id)"
                        " VALUES (%s, 'procedural', %s::jsonb, %s, %s) RETURNING id",
                        (name, doc, self.account, self.author))[0] for doc in docs]

    def sync(self, on: bool) -> None:
        for name in self.sync_triggers:
            self.conn.execute(f'ALTER TABLE public.trees {"ENABLE" if on else "DISABLE"} TRIGGER "{name}"')

    def publish(self, trees: list[uuid.UUID]) -> float:
        """One UPDATE publishing TREES (by id for one flow, id = ANY for several); wall seconds."""
        sql = "UPDATE public.trees SET status = 'published' WHERE " + ("id = %s" if len(trees) == 1 else "id = ANY(%s)")
        param: Any = trees[0] if len(trees) == 1 else trees
        t0 = time.perf_counter()
        cur = self.conn.execute(sql, (param,))
        wall = time.perf_counter() - t0
        if cur.rowcount != len(trees):
            raise RuntimeError(f"{self.label}: the publish updated {cur.rowcount} flows of {len(trees)}")
        return wall

    def entries(self, trees: list[uuid.UUID]) -> list[tuple[Any, ...]]:
        return self.conn.execute(ROW_SQL, (trees,)).fetchall()

    def close(self) -> None:
        try:
            self.sync(True)
        finally:
            self.conn.close()


def worker_spread(side: Side, trees: list[uuid.UUID]) -> dict[str, int]:
    """On Citus: how many of TREES sit on each worker (node:port), and on how many shards."""
    rows = side.conn.execute(
        "SELECT n.nodename || ':' || n.nodeport, count(*), count(DISTINCT s.shardid)"
        "  FROM unnest(%s::uuid[]) AS u (id)"
        "  CROSS JOIN LATERAL (SELECT get_shard_id_for_distribution_column('public.trees', u.id) AS shardid) AS s"
        "  JOIN pg_dist_placement AS p ON p.shardid = s.shardid JOIN pg_dist_node AS n ON n.groupid = p.groupid"
        " GROUP BY 1 ORDER BY 1", (trees,)).fetchall()
    out = {str(node): int(flows) for node, flows, _ in rows}
    out["shards"] = sum(int(shards) for _, _, shards in rows)
    return out


def publish_scenario(sides: dict[str, Side], name: str, flows: int, steps: int, rounds: int,
                     log: Log, citus_settings: dict[str, str] | None = None) -> dict[str, Any]:
    """Publish fresh drafts on both sides, with and without the sync, interleaved; medians and ratios.
    CITUS_SETTINGS: settings of the Citus side's session for this scenario (reset at its end)."""
    citus_settings = citus_settings or {}
    for setting, value in citus_settings.items():
        sides[CITUS].conn.execute("SELECT set_config(%s, %s, false)", (setting, value))
    try:
        return _publish_scenario(sides, name, flows, steps, rounds, log, citus_settings)
    finally:
        for setting in citus_settings:
            sides[CITUS].conn.execute(f"RESET {setting}")


def _publish_scenario(sides: dict[str, Side], name: str, flows: int, steps: int, rounds: int,
                      log: Log, citus_settings: dict[str, str]) -> dict[str, Any]:
    docs = [json.dumps(bench_flows.procedural(steps, tag=f" of flow {i}" if flows > 1 else "")) for i in range(flows)]
    variants = [(s, m) for s in SIDES for m in MODES]
    samples: dict[str, dict[str, list[float]]] = {s: {m: [] for m in MODES} for s in SIDES}
    written: dict[str, list[tuple[Any, ...]]] = {}
    spread: dict[str, int] = {}
    for r in range(rounds + 1):         # round 0 warms each session up and is not counted
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        drafts = {(s, m): sides[s].drafts(docs, f"{name} {m} {r}") for s, m in order}
        for s, m in order:
            side, trees = sides[s], drafts[(s, m)]
            side.sync(m == STEPSYNC)
            try:
                wall = side.publish(trees)
            finally:
                side.sync(True)
            rows = side.entries(trees)
            expected = flows * steps if m == STEPSYNC else 0
            if len(rows) != expected or not all(row[5] and row[6] for row in rows):
                raise AssertionError(f"{name}, {s}, {m}: {len(rows)} library rows after the publish,"
                                     f" expected {expected} active synced ones")
            if r > 0:
                samples[s][m].append(wall)
            if r == 1 and m == STEPSYNC:
                written[s] = rows
                if s == CITUS and flows > 1:
                    spread = worker_spread(side, trees)
    if written[CITUS] != written[ONE_NODE]:
        diff = next(i for i, (a, b) in enumerate(zip(written[CITUS], written[ONE_NODE], strict=False)) if a != b)
        raise AssertionError(f"{name}: Citus and one node wrote different library rows (first difference at row"
                             f" {diff}: {written[CITUS][diff]!r} against {written[ONE_NODE][diff]!r})")
    medians = {s: {m: statistics.median(samples[s][m]) * 1000 for m in MODES} for s in SIDES}
    ratio = {m: medians[CITUS][m] / medians[ONE_NODE][m] for m in MODES}
    result: dict[str, Any] = {
        "flows": flows, "steps": steps, "entries": flows * steps,
        "samples_ms": {s: {m: [x * 1000 for x in samples[s][m]] for m in MODES} for s in SIDES},
        "median_ms": medians, "ratio": ratio,
        "sync_ms": {s: medians[s][STEPSYNC] - medians[s][BARE] for s in SIDES},
        "target": TARGET_PUBLISH_RATIO, "met": ratio[STEPSYNC] <= TARGET_PUBLISH_RATIO,
        "same_rows": True, "citus_settings": citus_settings,
    }
    if spread:
        result["citus_spread"] = spread
        workers = [k for k in spread if k != "shards"]
        if len(workers) < 2:
            raise AssertionError(f"{name}: the flows sit on {workers} only, not on both workers")
    log(f"    {name}: stepsync {medians[CITUS][STEPSYNC]:.1f} ms on Citus, {medians[ONE_NODE][STEPSYNC]:.1f} ms on"
        f" one node ({ratio[STEPSYNC]:.2f} x); bare {medians[CITUS][BARE]:.2f} / {medians[ONE_NODE][BARE]:.2f} ms")
    return result


# -- search ----------------------------------------------------------------------------------------------------------

def copy_table(src: Conn, dst: Conn, table: str, columns: tuple[str, ...], where: str = "") -> int:
    """Rows of public.TABLE from SRC into DST (binary COPY, the same column types on both); bytes moved."""
    cols = ", ".join(columns)
    moved = 0
    with src.cursor().copy(f"COPY (SELECT {cols} FROM public.{table} {where}) TO STDOUT (FORMAT binary)") as out, \
            dst.cursor().copy(f"COPY public.{table} ({cols}) FROM STDIN (FORMAT binary)") as into:
        for block in out:
            into.write(block)
            moved += len(block)
    return moved


def build_search(one_url: str, citus_url: str, entries: int, log: Log) -> dict[str, Any]:
    """The library of ENTRIES steps on one node (search.build_library), then the same rows on Citus."""
    out: dict[str, Any] = {"entries": entries}
    with connect(one_url) as conn:
        search_bench.ensure_search_schema(conn)
        log(f"  building the library on one node: {entries:,} entries")
        t0 = time.perf_counter()
        built = search_bench.build_library(conn, entries, lambda line: log(f"  {line}"))
        out[ONE_NODE] = {**built, "total_s": time.perf_counter() - t0}
        log(f"    one node: {out[ONE_NODE]['total_s']:.0f} s (rows {built['load_s']:.0f} s, GIN index"
            f" {built['index_s']:.0f} s, then VACUUM ANALYZE)")
    with connect(one_url) as src, connect(citus_url) as dst:
        search_bench.ensure_search_schema(dst)
        t0 = time.perf_counter()
        copy_table(src, dst, "accounts", ("id", "name", "created_at"))
        copy_table(src, dst, "users", ("id", "email", "display_name", "account_id", "created_at"))
        index_def = one(dst, "SELECT pg_get_indexdef('public.step_library_search_vector_idx'::regclass)")[0]
        dst.execute("DROP INDEX public.step_library_search_vector_idx")
        log("  copying the library to Citus (the search vectors computed on the workers)")
        for digit in "0123456789abcdef":
            t1 = time.perf_counter()
            copy_table(src, dst, "step_library", LIBRARY_COLUMNS, f"WHERE left(id::text, 1) = '{digit}'")
            log(f"    ids {digit}...: {time.perf_counter() - t1:.1f} s")
        load = time.perf_counter() - t0
        t1 = time.perf_counter()
        dst.execute("SET maintenance_work_mem = '512MB'")
        dst.execute(index_def)
        dst.execute("RESET maintenance_work_mem")
        index = time.perf_counter() - t1
        dst.execute("VACUUM ANALYZE public.step_library")
        dst.execute("ANALYZE public.users")
        dst.execute("ANALYZE public.accounts")
        # As a DBA does after a large load on Citus (docs/contract.md §11): the sample search_steps
        # estimates from, which the shards' statistics cannot give the coordinator.
        t1 = time.perf_counter()
        dst.execute("SELECT stepsync.refresh_search_statistics()")
        out["sample_s"] = time.perf_counter() - t1
        out[CITUS] = {"load_s": load, "index_s": index, "total_s": time.perf_counter() - t0}
        log(f"    Citus: {out[CITUS]['total_s']:.0f} s (copy with the vectors {load:.0f} s, GIN index {index:.0f} s,"
            " then VACUUM ANALYZE)")
        a, b = one(src, CHECKSUM_SQL), one(dst, CHECKSUM_SQL)
        out["checksum"] = {ONE_NODE: [str(x) for x in a], CITUS: [str(x) for x in b]}
        if tuple(map(str, a)) != tuple(map(str, b)):
            raise AssertionError(f"the two libraries differ: (rows, active, vector checksum) {a} on one node, {b}"
                                 " on Citus")
        out["public_share"], out["unused_share"] = (float(x) for x in one(
            src, "SELECT count(*) FILTER (WHERE visibility = 'public')::float / count(*),"
                 " count(*) FILTER (WHERE usage_count = 0)::float / count(*) FROM public.step_library"))
    return out


def time_search(one_url: str, citus_url: str, rounds: int, log: Log) -> dict[str, Any]:
    """search_steps on both sides for search.py's classes and users, interleaved; rows compared every time."""
    with connect(one_url, prepare_threshold=None) as one_conn, connect(citus_url, prepare_threshold=None) as ci:
        conns = {ONE_NODE: one_conn, CITUS: ci}
        terms = search_bench.choose_terms(one_conn, QUERIES_PER_CLASS)
        users = search_bench.choose_users(one_conn)
        out: dict[str, Any] = {"terms": {cls: [q for q, _ in qs] for cls, qs in terms.items()},
                               "users": {k: str(v) for k, v in users.items()}, "classes": {}, "mismatches": [],
                               "errors": []}
        for cls, queries in terms.items():
            if not queries:
                continue
            for user_kind, user in users.items():
                times: dict[str, list[float]] = {s: [] for s in SIDES}
                failed = False
                for q, kind in queries:
                    params = {"user": user, "q": q, "kind": kind}
                    try:
                        full = {s: conns[s].execute(SEARCH_ROWS_SQL, params).fetchall() for s in SIDES}
                    except psycopg.Error as exc:
                        out["errors"].append({"class": cls, "user": user_kind, "query": q, "sqlstate": sqlstate(exc),
                                              "message": str(exc).strip().splitlines()[0]})
                        failed = True
                        continue
                    if full[CITUS] != full[ONE_NODE]:
                        out["mismatches"].append(mismatch(cls, user_kind, q, kind, full[CITUS], full[ONE_NODE]))
                    for r in range(rounds):
                        got: dict[str, list[tuple[Any, ...]]] = {}
                        for s in (SIDES if r % 2 == 0 else tuple(reversed(SIDES))):
                            t0 = time.perf_counter()
                            got[s] = conns[s].execute(SEARCH_SQL, params).fetchall()
                            times[s].append((time.perf_counter() - t0) * 1000)
                        if got[CITUS] != got[ONE_NODE] and not any(
                                m["query"] == q and m["user"] == user_kind for m in out["mismatches"]):
                            out["mismatches"].append(mismatch(cls, user_kind, q, kind, got[CITUS], got[ONE_NODE]))
                if failed and not times[CITUS]:
                    continue
                stats = {s: {"p50": search_bench.percentile(times[s], 50),
                             "p95": search_bench.percentile(times[s], 95), "n": len(times[s])} for s in SIDES}
                entry = {"class": cls, "user": user_kind, **stats,
                         "ratio_p50": stats[CITUS]["p50"] / stats[ONE_NODE]["p50"],
                         "ratio_p95": stats[CITUS]["p95"] / stats[ONE_NODE]["p95"]}
                entry["citus_remote_commands"] = remote_commands(ci, {"user": user, "q": queries[0][0],
                                                                      "kind": queries[0][1]})
                out["classes"][f"{cls}|{user_kind}"] = entry
                log(f"    {cls}, {user_kind}: p95 {stats[CITUS]['p95']:.1f} ms on Citus,"
                    f" {stats[ONE_NODE]['p95']:.1f} ms on one node ({entry['ratio_p95']:.2f} x)")
        ratios = [e["ratio_p95"] for e in out["classes"].values()]
        out["worst_ratio_p95"] = max(ratios) if ratios else float("nan")
        out["target"] = TARGET_SEARCH_P95_RATIO
        out["met"] = bool(ratios) and out["worst_ratio_p95"] <= TARGET_SEARCH_P95_RATIO and not out["errors"]
        return out


def remote_commands(conn: Conn, params: dict[str, Any]) -> int:
    """How many commands the coordinator sends to the workers (or runs on its own shards) for one search."""
    notices: list[str] = []

    def handler(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    conn.add_notice_handler(handler)
    try:
        conn.execute("SET citus.log_remote_commands = on")
        conn.execute("SET citus.log_local_commands = on")
        conn.execute(SEARCH_SQL, params).fetchall()
    finally:
        conn.execute("RESET citus.log_remote_commands")
        conn.execute("RESET citus.log_local_commands")
        conn.remove_notice_handler(handler)
    return len([n for n in notices if n.startswith(("issuing", "executing the command locally"))])


def mismatch(cls: str, user: str, q: str, kind: str | None, citus_rows: list[tuple[Any, ...]],
             one_rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    first = next((i for i, (a, b) in enumerate(zip(citus_rows, one_rows, strict=False)) if a != b),
                 min(len(citus_rows), len(one_rows)))
    return {"class": cls, "user": user, "query": q, "step_type": kind, "rows": {CITUS: len(citus_rows),
            ONE_NODE: len(one_rows)}, "first_difference": first,
            CITUS: [str(r) for r in citus_rows[first:first + 3]], ONE_NODE: [str(r) for r in one_rows[first:first + 3]]}


# -- the run ---------------------------------------------------------------------------------------------------------

def run(coordinator_url: str, rounds: int = 3, output: Path | None = None, *, search_entries: int = SEARCH_ENTRIES,
        shard_count: int | None = None, log: Log | None = None) -> dict[str, Any]:
    """Run the comparison (the module's docstring), print the tables, write the JSON to OUTPUT; returns it."""
    say: Log = log or (lambda line: console.print(line, highlight=False))
    citus = CitusCluster(coordinator_url, shard_count)
    one_node = OneNode(citus.settings)
    tag = f"{os.getpid()}"
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "rounds": rounds,
        "citus": {"citus_version": citus.citus_version, "workers": [f"{h}:{p}" for h, p in citus.workers],
                  "settings": citus.settings},
        "one_node": {"settings": one_node.settings, "bin_dir": str(one_node.cluster.bin_dir)},
        "setting_differences": {k: [citus.settings.get(k), one_node.settings.get(k)]
                                for k in COMPARED_SETTINGS if citus.settings.get(k) != one_node.settings.get(k)},
        "publish": {}, "errors": [],
    }
    try:
        with connect(coordinator_url) as conn:
            result["citus"]["shard_count"] = shard_count or int(one(conn, "SHOW citus.shard_count")[0])
        say(f"[bold]stepsync on Citus[/bold] {citus.citus_version}: PostgreSQL {citus.settings['server_version']},"
            f" workers {', '.join(result['citus']['workers'])}; one node: PostgreSQL"
            f" {one_node.settings['server_version']} ({one_node.cluster.bin_dir}); {rounds} rounds")
        if result["setting_differences"]:
            say(f"  settings that differ: {result['setting_differences']}")
        say("  databases")
        urls = {CITUS: citus.create(f"stepsync_bench_citus_pub_{tag}", say),
                ONE_NODE: one_node.create(f"stepsync_bench_citus_pub_{tag}", say)}
        sides = {s: Side(s, urls[s]) for s in SIDES}
        try:
            for name, flows, steps, settings in PUBLISH_SCENARIOS:
                say(f"  {name}" + "".join(f" ({k} = {v} on Citus)" for k, v in settings.items()))
                try:
                    result["publish"][name] = publish_scenario(sides, name, flows, steps, rounds, say, settings)
                except (psycopg.Error, AssertionError, RuntimeError) as exc:
                    result["errors"].append({"part": name, "sqlstate": sqlstate(exc),
                                             "message": str(exc).strip().splitlines()[0]})
                    say(f"    [red]error[/red] ({sqlstate(exc)}): {exc}")
        finally:
            for side in sides.values():
                side.close()
        if search_entries:
            search_urls = {CITUS: citus.create(f"stepsync_bench_citus_search_{tag}", say),
                           ONE_NODE: one_node.create(f"stepsync_bench_citus_search_{tag}", say)}
            try:
                result["search_build"] = build_search(search_urls[ONE_NODE], search_urls[CITUS], search_entries, say)
                say(f"  search_steps at {search_entries:,} entries, {rounds} rounds a query")
                result["search"] = time_search(search_urls[ONE_NODE], search_urls[CITUS], rounds, say)
            except (psycopg.Error, AssertionError, RuntimeError) as exc:
                result["errors"].append({"part": "search", "sqlstate": sqlstate(exc),
                                         "message": str(exc).strip().splitlines()[0]})
                say(f"    [red]error[/red] ({sqlstate(exc)}): {exc}")
    finally:
        try:
            citus.drop_all()
        finally:
            one_node.stop()
    print_result(result)
    if output is not None:
        output.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        say(f"JSON written to {output}")
    return result


# -- reporting -------------------------------------------------------------------------------------------------------

def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def print_result(result: dict[str, Any]) -> None:
    """The figures as rich tables."""
    table = Table(title=f"publishing, medians of {result['rounds']} rounds (wall ms, client side)",
                  header_style="bold")
    for column in ("scenario", "Citus", "one node", "Citus / one node", "bare Citus", "bare one node",
                   "bare ratio", f"target <= {TARGET_PUBLISH_RATIO:g} x"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for name, p in result["publish"].items():
        m = p["median_ms"]
        table.add_row(name, f"{m[CITUS][STEPSYNC]:.1f}", f"{m[ONE_NODE][STEPSYNC]:.1f}", f"{p['ratio'][STEPSYNC]:.2f}",
                      f"{m[CITUS][BARE]:.2f}", f"{m[ONE_NODE][BARE]:.2f}", f"{p['ratio'][BARE]:.2f}",
                      verdict(p["met"]) if p["met"] else f"[red]{verdict(p['met'])}[/red]")
    console.print(table)
    s = result.get("search")
    if s:
        build = result["search_build"]
        table = Table(title=f"search_steps at {build['entries']:,} entries (ms, client side,"
                            f" {result['rounds']} rounds x {QUERIES_PER_CLASS} queries)", header_style="bold")
        for column in ("class", "user", "Citus p50", "p95", "one node p50", "p95", "p50 ratio", "p95 ratio",
                       "commands to shards"):
            table.add_column(column, justify="left" if column in ("class", "user") else "right")
        for e in s["classes"].values():
            table.add_row(e["class"], e["user"], f"{e[CITUS]['p50']:.1f}", f"{e[CITUS]['p95']:.1f}",
                          f"{e[ONE_NODE]['p50']:.1f}", f"{e[ONE_NODE]['p95']:.1f}", f"{e['ratio_p50']:.2f}",
                          f"{e['ratio_p95']:.2f}", str(e.get("citus_remote_commands", "")))
        console.print(table)
    for line in summary_lines(result):
        console.print(f"- {line}", highlight=False)


def spread_text(p: dict[str, Any]) -> str:
    spread = p.get("citus_spread")
    if not spread:
        return ""
    nodes = ", ".join(f"{k} ({v} flows)" for k, v in spread.items() if k != "shards")
    return f"; on Citus the flows sat on {nodes}, {spread['shards']} shards"


def summary_lines(result: dict[str, Any]) -> list[str]:
    out = []
    for name, p in result["publish"].items():
        out.append(f"{name}: Citus / one node {p['ratio'][STEPSYNC]:.2f} (target <= {TARGET_PUBLISH_RATIO:g}:"
                   f" {verdict(p['met'])}); the sync's own share (stepsync - bare) {p['sync_ms'][CITUS]:.1f} ms on"
                   f" Citus, {p['sync_ms'][ONE_NODE]:.1f} ms on one node"
                   + spread_text(p)
                   + "".join(f"; the Citus session with {k} = {v}" for k, v in p.get("citus_settings", {}).items()))
    s = result.get("search")
    if s:
        b = result["search_build"]
        out.append(f"search: worst p95 ratio Citus / one node {s['worst_ratio_p95']:.2f} (target <="
                   f" {TARGET_SEARCH_P95_RATIO:g}: {verdict(s['met'])}); {len(s['mismatches'])} queries whose rows or"
                   f" order differ, {len(s['errors'])} errors")
        out.append(f"library build: one node {b[ONE_NODE]['total_s']:.0f} s (rows {b[ONE_NODE]['load_s']:.0f} s,"
                   f" index {b[ONE_NODE]['index_s']:.0f} s), Citus {b[CITUS]['total_s']:.0f} s (copy"
                   f" {b[CITUS]['load_s']:.0f} s, index {b[CITUS]['index_s']:.0f} s)")
        for m in s["mismatches"]:
            out.append(f"DIFFERENT ROWS: {m['class']}, {m['user']}, {m['query']!r}: rows {m['rows']}, first difference"
                       f" at {m['first_difference']}")
    for e in result["errors"]:
        out.append(f"ERROR in {e['part']} ({e['sqlstate']}): {e['message']}")
    if result["setting_differences"]:
        out.append(f"settings that differ (Citus, one node): {result['setting_differences']}")
    return out


def render_markdown(result: dict[str, Any]) -> str:
    """The figures as a Markdown section (for stepsync_dev.bench.report)."""
    c = result["citus"]
    lines = [
        "## Citus against one node", "",
        f"Citus {c['citus_version']} on PostgreSQL {c['settings'].get('server_version', '?')} (a coordinator and"
        f" {len(c['workers'])} workers, {c.get('shard_count', '?')} shards, on this machine) against one PostgreSQL"
        f" {result['one_node']['settings'].get('server_version', '?')} server with the coordinator's settings, in one"
        f" run: {result['rounds']} rounds after a warm-up, the four variants interleaved; medians, wall ms, client"
        " side. `bare` is the same UPDATE with the sync's triggers disabled.", "",
        "| scenario | Citus | one node | Citus / one node | bare Citus | bare one node | bare ratio | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, p in result["publish"].items():
        m = p["median_ms"]
        lines.append(f"| {name} | {m[CITUS][STEPSYNC]:.1f} | {m[ONE_NODE][STEPSYNC]:.1f} | {p['ratio'][STEPSYNC]:.2f}"
                     f" | {m[CITUS][BARE]:.2f} | {m[ONE_NODE][BARE]:.2f} | {p['ratio'][BARE]:.2f}"
                     f" | <= {TARGET_PUBLISH_RATIO:g}: {verdict(p['met'])} |")
    s = result.get("search")
    if s:
        b = result["search_build"]
        lines += ["", f"search_steps at {b['entries']:,} entries ({b['public_share']:.0%} public), the same rows on"
                  f" both sides; {QUERIES_PER_CLASS} queries a class, {result['rounds']} rounds. Latencies in ms.", "",
                  "| class | user | Citus p50 | p95 | one node p50 | p95 | p95 ratio |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for e in s["classes"].values():
            lines.append(f"| {e['class']} | {e['user']} | {e[CITUS]['p50']:.1f} | {e[CITUS]['p95']:.1f}"
                         f" | {e[ONE_NODE]['p50']:.1f} | {e[ONE_NODE]['p95']:.1f} | {e['ratio_p95']:.2f} |")
    lines.append("")
    lines += [f"- {line}" for line in summary_lines(result)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:  # pragma: no cover
    args = list(argv)
    entries = SEARCH_ENTRIES
    output = Path("citus-bench.json")
    if "--search" in args:
        i = args.index("--search")
        entries = int(args[i + 1])
        del args[i:i + 2]
    shard_count = None
    if "--shard-count" in args:
        i = args.index("--shard-count")
        shard_count = int(args[i + 1])
        del args[i:i + 2]
    if "--output" in args:
        i = args.index("--output")
        output = Path(args[i + 1])
        del args[i:i + 2]
    if not args:
        print("usage: python -m stepsync_dev.bench.citus COORDINATOR_URL [ROUNDS] [--search N] [--shard-count N]"
              " [--output FILE.json]", file=sys.stderr)
        return 2
    rounds = int(args[1]) if len(args) > 1 else 3
    result = run(args[0], rounds, output, search_entries=entries, shard_count=shard_count)
    return 1 if result["errors"] or (result.get("search") or {}).get("mismatches") else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
