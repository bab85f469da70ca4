"""The live-install benchmark (issue 9 point 4, docs/contract.md §9.4): `stepsync install` into a busy database.

One run, on a fresh database of its own on the server ADMIN_URL names (a role that may create
databases and roles, normally a superuser):

1. load: an application database as an adopting team has it (the seed application's tables,
   `varchar` types, its own constraint names, its own owner role, its own trigger on trees and its
   own alembic_version), filled with set-based SQL: FLOWS listed flows (published, active) of STEPS
   procedural steps each, drafts of the same shape, users, accounts, and hand-made library rows;
2. live writers: WRITERS threads, each with its own connection as the application's client role
   (not the owner), loop for the whole run at a steady pace: rename flows, read flows, bump
   usage counts on hand-made rows and (once the sync key exists) on synced rows, read library rows,
   insert hand-made rows, publish drafts (UPDATE status = 'published'). Each statement is timed
   client-side; a statement that fails with lock_timeout or statement_timeout counts as "waited",
   any other error is a failure;
3. the real install, `stepsync.install.install(url, ...)` as the superuser (the product's own code
   path: preflight, alembic upgrade with its lock_timeout retries, the batched backfill), while the
   writers run. Its phases are timed by wrapping the stepsync.frozen step runners and
   stepsync.install.backfill (timing only: they run unchanged), and a monitor samples
   pg_stat_activity ten times a second to name what any waiting application statement waited for;
4. the writers run on for a moment, stop, and the checks say whether anything was lost: every
   listed flow has its STEPS active entries, the entry count is listed flows x STEPS (the drafts the
   writers published included), `stepsync.check_library()` is empty, and every usage bump that
   reported a row is in the usage counts.

Target (§9.4): no application statement waits more than 2 s; nothing lost.

`run(...)` returns a JSON-able dict; `render_markdown(result)` the section for docs/benchmarks.md.
Alone: `PYTHONPATH=tools python -m stepsync_dev.bench.install --database-url URL --flows 100000` (without a URL: a
throwaway cluster, binaries from STEPSYNC_PG_BIN like the tests).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg import sql as pgsql

from stepsync import database
from stepsync.database import one_row

TARGET_WAIT_S = 2.0
INSTALL_APP = "stepsync-bench-install"
WRITER_APP = "stepsync-bench-writer"
MONITOR_APP = "stepsync-bench-monitor"
# A writer statement failing with one of these waited (for a lock, or past the statement timeout).
WAIT_STATES = {"55P03": "lock_timeout", "57014": "statement_timeout"}
WRITER_STATEMENT_TIMEOUT_S = 60

# The application's tables, as tests/app_schema.py builds them (copied: the benchmark runs from an
# installed wheel, which has no tests/). {owner} is the application's owner role.
APP_SCHEMA = """
CREATE TABLE public.accounts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(200) NOT NULL,
    plan varchar(20) NOT NULL DEFAULT 'free',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email varchar(320) NOT NULL CONSTRAINT uq_users_email UNIQUE,
    display_name varchar(120),
    account_id uuid CONSTRAINT fk_users_account REFERENCES public.accounts (id),
    is_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.trees (
    id uuid CONSTRAINT pk_trees PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(255) NOT NULL,
    description text,
    tree_type varchar(50) NOT NULL,
    tree_structure jsonb NOT NULL DEFAULT '{}',
    status varchar(20) NOT NULL DEFAULT 'draft',
    is_active boolean NOT NULL DEFAULT true,
    is_public boolean NOT NULL DEFAULT false,
    account_id uuid CONSTRAINT fk_trees_account REFERENCES public.accounts (id),
    author_id uuid NOT NULL CONSTRAINT fk_trees_author REFERENCES public.users (id),
    version integer NOT NULL DEFAULT 1,
    tags varchar(50)[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_trees_author ON public.trees (author_id);
CREATE TABLE public.step_library (
    id uuid CONSTRAINT pk_step_library PRIMARY KEY DEFAULT gen_random_uuid(),
    title varchar(255) NOT NULL,
    step_type varchar(20) NOT NULL,
    content jsonb NOT NULL,
    visibility varchar(20) NOT NULL DEFAULT 'private',
    created_by uuid CONSTRAINT fk_step_library_creator REFERENCES public.users (id),
    account_id uuid CONSTRAINT fk_step_library_account REFERENCES public.accounts (id),
    usage_count integer NOT NULL DEFAULT 0,
    rating numeric(3,2),
    rating_count integer NOT NULL DEFAULT 0,
    is_active boolean NOT NULL DEFAULT true,
    category varchar(40) DEFAULT 'general',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_step_library_title ON public.step_library (title);
CREATE TABLE public.tree_audit (tree_id uuid, changed_at timestamptz DEFAULT now());
CREATE FUNCTION public.audit_tree() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.tree_audit (tree_id) VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER trg_trees_audit AFTER UPDATE ON public.trees FOR EACH ROW EXECUTE FUNCTION public.audit_tree();
CREATE TABLE public.alembic_version (version_num varchar(32) NOT NULL CONSTRAINT alembic_version_pkc PRIMARY KEY);
INSERT INTO public.alembic_version VALUES ('046_add_ratings');
ALTER TABLE public.accounts OWNER TO {owner};
ALTER TABLE public.users OWNER TO {owner};
ALTER TABLE public.trees OWNER TO {owner};
ALTER TABLE public.step_library OWNER TO {owner};
ALTER TABLE public.tree_audit OWNER TO {owner};
ALTER TABLE public.alembic_version OWNER TO {owner};
ALTER FUNCTION public.audit_tree() OWNER TO {owner};
GRANT CREATE ON SCHEMA public TO {owner};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {client};
"""

# One procedural structure of %(steps)s steps for flow number g: a section header every 10 steps,
# each step with a description, an expected outcome and two commands, then the end node.
_STRUCTURE = """
jsonb_build_object('steps',
    (SELECT jsonb_agg(e.node ORDER BY e.ord)
       FROM (SELECT 2 * i AS ord,
                    jsonb_build_object('id', 'hdr-' || (i / 10), 'type', 'section_header',
                                       'title', 'Section ' || (i / 10) || ' of flow ' || g) AS node
               FROM generate_series(0, %(steps)s::int - 1) AS i WHERE i %% 10 = 0
             UNION ALL
             SELECT 2 * i + 1,
                    jsonb_build_object('id', 'step-' || lpad(i::text, 5, '0'), 'type', 'procedure_step',
                                       'title', 'Step ' || i || ' of flow ' || g,
                                       'description', 'Do the thing number ' || i || ' of flow ' || g
                                                      || ' carefully, then check the result.',
                                       'expected_outcome', 'Thing ' || i || ' is done.',
                                       'commands', jsonb_build_array(
                                           jsonb_build_object('code', 'run --item ' || i, 'language', 'bash',
                                                              'label', 'Run'),
                                           'check ' || i))
               FROM generate_series(0, %(steps)s::int - 1) AS i
             UNION ALL
             SELECT 2 * %(steps)s::int + 1, '{"id": "end", "type": "procedure_end"}'::jsonb) AS e))
"""

_LOAD_FLOWS = """
INSERT INTO public.trees (name, description, tree_type, tree_structure, status, is_public, account_id, author_id)
SELECT 'Flow ' || g, 'Benchmark flow ' || g, 'procedural', """ + _STRUCTURE + """,
       %(status)s, g %% 3 = 0, u.account_id, u.id
  FROM generate_series(%(first)s::int, %(last)s::int) AS g
  JOIN public.users AS u ON u.email = 'user' || (g %% %(users)s::int) || '@bench.example'
"""


@dataclass
class Statement:
    """One application statement: when it started (monotonic), its kind, latency, outcome."""

    start: float
    kind: str
    seconds: float
    outcome: str          # ok | waited | error
    sqlstate: str | None = None
    message: str | None = None
    rows: int = 0


class _Shared:
    """What the writers share: id pools, the "sync key exists" flag, the stop event."""

    def __init__(self, flow_ids: list[Any], draft_ids: list[Any], hand_ids: list[Any], steps: int) -> None:
        self.flow_ids = flow_ids
        self.drafts = draft_ids
        self.hand_ids = hand_ids
        self.steps = steps
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.synced_ready = threading.Event()
        self.published: list[Any] = []

    def take_draft(self) -> Any | None:
        with self.lock:
            return self.drafts.pop() if self.drafts else None

    def add_hand(self, row_id: Any) -> None:
        with self.lock:
            self.hand_ids.append(row_id)


def _with_database(url: str, dbname: str, **params: str) -> str:
    """URL with its database replaced by DBNAME and PARAMS added to its query."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return parts._replace(path=f"/{dbname}", query=urlencode(query)).geturl()


def _pct(values: list[float], q: float) -> float:
    """The Q-quantile (0..1) of VALUES, nearest rank; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# ------------------------------------------------------------------------------------------ loading


def _load(conn: psycopg.Connection[Any], *, owner: str, client: str, flows: int, drafts: int, steps: int,
          users: int, accounts: int, hand_made: int, say: Callable[[str], None]) -> None:
    """The application's schema and rows, set-based, in CONN's (empty) database."""
    conn.execute(APP_SCHEMA.replace("{owner}", pgsql.Identifier(owner).as_string(conn))
                 .replace("{client}", pgsql.Identifier(client).as_string(conn)))
    conn.execute("INSERT INTO public.accounts (name) SELECT 'Account ' || a FROM generate_series(1, %s::int) AS a",
                 (accounts,))
    conn.execute("""
        INSERT INTO public.users (email, display_name, account_id)
        SELECT 'user' || u || '@bench.example', 'User ' || u, a.id
          FROM generate_series(0, %s::int - 1) AS u
          JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM public.accounts) AS a
            ON a.n = u %% %s::int""", (users, accounts))
    chunk = 10_000
    for status, count in (("published", flows), ("draft", drafts)):
        base = 1 if status == "published" else flows + 1
        for first in range(base, base + count, chunk):
            last = min(base + count - 1, first + chunk - 1)
            conn.execute(_LOAD_FLOWS, {"steps": steps, "status": status, "first": first, "last": last,
                                       "users": users})
            say(f"loaded {status} flows {first - base + 1}-{last - base + 1} of {count}")
    conn.execute("""
        INSERT INTO public.step_library (title, step_type, content, visibility, created_by, account_id)
        SELECT 'Hand-made step ' || h, 'action',
               jsonb_build_object('instructions', 'Hand-made instructions ' || h, 'help_text', null,
                                  'commands', '[]'::jsonb, 'group_label', null),
               'team', u.id, u.account_id
          FROM generate_series(0, %s::int - 1) AS h
          JOIN public.users AS u ON u.email = 'user' || (h %% %s::int) || '@bench.example'""", (hand_made, users))
    conn.execute("VACUUM ANALYZE public.accounts, public.users, public.trees, public.step_library")


# ------------------------------------------------------------------------------------------ writers


class _Writer(threading.Thread):
    """One application session: a steady mix of short statements, each in its own transaction."""

    KINDS = (("rename_flow", 3), ("read_flow", 2), ("bump_hand_made", 2), ("bump_synced", 2),
             ("read_library", 1), ("insert_hand_made", 0.5), ("publish_draft", 1), ("edit_in_transaction", 0.5))
    # edit_in_transaction: BEGIN, an UPDATE of a flow's description, 0.1-0.5 s of application work with
    # the transaction open (its locks held), COMMIT: what makes the install's DDL wait for its locks.

    def __init__(self, n: int, url: str, user: str, password: str, shared: _Shared, rate: float,
                 seed: int) -> None:
        super().__init__(name=f"bench-writer-{n}", daemon=True)
        self.n = n
        self.url = url
        self.user = user
        self.password = password
        self.shared = shared
        self.rate = rate
        self.random = random.Random(seed)
        self.statements: list[Statement] = []
        self.bumps: Counter[str] = Counter()   # rows reported by successful bumps, by kind
        self.fatal: str | None = None
        self.conn: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, user=self.user, password=self.password, autocommit=True,
                               application_name=f"{WRITER_APP}-{self.n}",
                               options=f"-c statement_timeout={WRITER_STATEMENT_TIMEOUT_S}s")

    def _pick(self) -> str:
        kinds = [(k, w) for k, w in self.KINDS if k != "bump_synced" or self.shared.synced_ready.is_set()]
        if not self.shared.drafts:
            kinds = [(k, w) for k, w in kinds if k != "publish_draft"]
        return self.random.choices([k for k, _ in kinds], [w for _, w in kinds])[0]

    def _statement(self, kind: str) -> tuple[str, tuple[Any, ...]] | None:
        r, s = self.random, self.shared
        if kind == "rename_flow":
            return ("UPDATE public.trees SET name = %s WHERE id = %s",
                    (f"Renamed {r.randrange(10**9)}", r.choice(s.flow_ids)))
        if kind == "read_flow":
            return ("SELECT id, name, status, tree_structure FROM public.trees WHERE id = %s",
                    (r.choice(s.flow_ids),))
        if kind == "bump_hand_made":
            return ("UPDATE public.step_library SET usage_count = usage_count + 1 WHERE id = %s",
                    (r.choice(s.hand_ids),))
        if kind == "bump_synced":
            return (("UPDATE public.step_library SET usage_count = usage_count + 1"
                    " WHERE source_tree_id = %s AND source_node_id = %s"),
                    (r.choice(s.flow_ids), f"step-{r.randrange(s.steps):05d}"))
        if kind == "read_library":
            return ("SELECT id, title, usage_count FROM public.step_library WHERE id = %s",
                    (r.choice(s.hand_ids),))
        if kind == "insert_hand_made":
            return (("INSERT INTO public.step_library (title, step_type, content, visibility)"
                    " VALUES (%s, 'action', jsonb_build_object('instructions', 'Written during the install',"
                    " 'help_text', null, 'commands', '[]'::jsonb, 'group_label', null), 'private') RETURNING id"),
                    (f"Live hand-made step {r.randrange(10**9)}",))
        if kind == "edit_in_transaction":
            return ("UPDATE public.trees SET description = %s WHERE id = %s",
                    (f"Edited {r.randrange(10**9)}", r.choice(s.flow_ids)))
        draft = s.take_draft()
        if draft is None:
            return None
        return ("UPDATE public.trees SET status = 'published' WHERE id = %s", (draft,))

    def run(self) -> None:
        try:
            self.conn = self._connect()
        except psycopg.Error as exc:
            self.fatal = f"cannot connect: {str(exc).strip().splitlines()[0]}"
            return
        interval = 1.0 / self.rate
        due = time.monotonic() + self.random.random() * interval
        while not self.shared.stop.is_set():
            pause = due - time.monotonic()
            if pause > 0 and self.shared.stop.wait(pause):
                break
            due = max(due + interval, time.monotonic() - 1.0)   # catch up, but never by more than 1 s
            kind = self._pick()
            statement = self._statement(kind)
            if statement is None:
                continue
            self._execute(kind, *statement)
        self.conn.close()

    def _execute(self, kind: str, query: str, params: tuple[Any, ...]) -> None:
        assert self.conn is not None
        in_transaction = kind == "edit_in_transaction"
        start = time.monotonic()
        try:
            if in_transaction:
                self.conn.execute("BEGIN")
                start = time.monotonic()
            cursor = self.conn.execute(query, params)
            rows = cursor.rowcount
            returned = cursor.fetchone() if kind == "insert_hand_made" else None
            seconds = time.monotonic() - start
            if in_transaction:   # the application's work, locks held; then COMMIT, timed too
                time.sleep(self.random.uniform(0.1, 0.5))
                start_commit = time.monotonic()
                self.conn.execute("COMMIT")
                seconds += time.monotonic() - start_commit
        except psycopg.Error as exc:
            seconds = time.monotonic() - start
            if in_transaction and not self.conn.broken:
                self.conn.execute("ROLLBACK")
            state = exc.sqlstate
            outcome = "waited" if state in WAIT_STATES else "error"
            self.statements.append(Statement(start, kind, seconds, outcome, state,
                                             (str(exc).strip().splitlines() or [""])[0][:200]))
            if kind == "publish_draft":   # not published: back in the pool
                with self.shared.lock:
                    self.shared.drafts.insert(0, params[0])
            if self.conn.broken:
                try:
                    self.conn = self._connect()
                except psycopg.Error:
                    self.fatal = "lost its connection and could not reconnect"
                    self.shared.stop.wait()
            return
        self.statements.append(Statement(start, kind, seconds, "ok", rows=rows))
        if kind in ("bump_hand_made", "bump_synced"):
            self.bumps[kind] += rows
        elif kind == "insert_hand_made" and returned is not None:
            self.shared.add_hand(returned[0])
        elif kind == "publish_draft":
            with self.shared.lock:
                self.shared.published.append(params[0])


# ------------------------------------------------------------------------------------------ monitor


class _Monitor(threading.Thread):
    """Samples pg_stat_activity: which application statements wait on a lock, for how long, behind what.

    It also raises the writers' "sync key exists" flag once the unique index on
    (source_tree_id, source_node_id) is valid (catalog reads only: no lock on the tables).
    """

    SAMPLE = """
        SELECT a.pid, a.application_name, a.wait_event_type, a.wait_event,
               EXTRACT(epoch FROM clock_timestamp() - a.query_start)::float8,
               left(regexp_replace(a.query, '\\s+', ' ', 'g'), 160), pg_blocking_pids(a.pid)
          FROM pg_stat_activity AS a
         WHERE a.datname = current_database() AND a.state = 'active' AND a.pid <> pg_backend_pid()
           AND a.application_name LIKE 'stepsync-bench-%'"""

    def __init__(self, url: str, shared: _Shared, phases: _Phases, interval: float = 0.1) -> None:
        super().__init__(name="bench-monitor", daemon=True)
        self.url = url
        self.phases = phases
        self.shared = shared
        self.interval = interval
        self.waits: dict[str, dict[str, Any]] = {}
        self.samples = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(self.url, autocommit=True, application_name=MONITOR_APP) as conn:
                while not self.shared.stop.wait(self.interval):
                    self._sample(conn)
        except psycopg.Error as exc:
            self.error = str(exc).strip().splitlines()[0]

    def _sample(self, conn: psycopg.Connection[Any]) -> None:
        if not self.shared.synced_ready.is_set():
            ready = one_row(conn.execute(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_index"
                " WHERE indexrelid = pg_catalog.to_regclass('public.step_library_source_key') AND indisvalid)"
            ))[0]
            if ready:
                self.shared.synced_ready.set()
        rows = conn.execute(self.SAMPLE).fetchall()
        self.samples += 1
        by_pid = {row[0]: row for row in rows}
        for _pid, app, wait_type, wait_event, age, _query, blockers in rows:
            if not app.startswith(WRITER_APP) or wait_type != "Lock":
                continue
            for blocker in blockers or [None]:
                other = by_pid.get(blocker)
                if other is None:
                    label = "another session"
                elif other[1] == INSTALL_APP:
                    label = f"the install ({self.phases.current()}): {other[5][:90]}"
                else:
                    label = f"an application session: {other[5][:90]}"
                entry = self.waits.setdefault(label, {"blocker": label, "max_s": 0.0, "samples": 0,
                                                      "lock": f"{wait_event}"})
                entry["max_s"] = max(entry["max_s"], float(age or 0))
                entry["samples"] += 1


# ------------------------------------------------------------------------------------------ install phases


class _Phases:
    """The install's steps, timed by wrapping the runners the migration calls (behaviour unchanged)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []   # {phase, start, end, ok}
        self.batches: list[tuple[float, int, int]] = []   # (time, flows done, rows written)
        self._depth = 0

    @staticmethod
    def _label(function: str, args: tuple[Any, ...]) -> str:
        if function == "outside_transaction":
            return {"unique_key.gexec.sql": "unique key: CREATE UNIQUE INDEX CONCURRENTLY",
                    "indexes.gexec.sql": "other indexes: CREATE INDEX CONCURRENTLY",
                    "backfill.gexec.sql": "backfill (in the migration)",
                    "validate.gexec.sql": "validate constraints"}.get(args[2], f"outside a transaction: {args[2]}")
        text = "\n".join(a for a in args[1:] if isinstance(a, str))
        if function == "transaction":
            if "CREATE OR REPLACE TRIGGER" in text or "CREATE TRIGGER" in text:
                return "DDL transaction 2: key constraint, triggers"
            return "DDL transaction 1: columns, functions, grants"
        if "stepsync cannot be installed" in text:
            return "preflight (in the migration)"
        if "v_present" in text:
            return "stepsync_0001: the application's tables are there"
        if "CREATE SCHEMA" in text:
            return "schema stepsync"
        return "other migration SQL"

    @contextmanager
    def watching(self) -> Iterator[None]:
        from stepsync import frozen
        from stepsync import install as install_module

        saved = {name: getattr(frozen, name) for name in ("execute", "transaction", "outside_transaction")}
        saved_backfill = install_module.backfill

        def wrap(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
            def timed(*args: Any, **kwargs: Any) -> Any:
                if self._depth or (args and getattr(args[0].get_context(), "as_sql", False)):
                    return function(*args, **kwargs)
                self._depth += 1
                event = {"phase": self._label(name, args), "start": time.monotonic(), "end": None, "ok": False}
                self.events.append(event)
                try:
                    result = function(*args, **kwargs)
                    event["ok"] = True
                    return result
                finally:
                    event["end"] = time.monotonic()
                    self._depth -= 1
            return timed

        def timed_backfill(*args: Any, **kwargs: Any) -> Any:
            event = {"phase": "backfill", "start": time.monotonic(), "end": None, "ok": False}
            self.events.append(event)
            try:
                result = saved_backfill(*args, **kwargs)
                event["ok"] = True
                return result
            finally:
                event["end"] = time.monotonic()

        for name, function in saved.items():
            setattr(frozen, name, wrap(name, function))
        install_module.backfill = timed_backfill
        try:
            yield
        finally:
            for name, function in saved.items():
                setattr(frozen, name, function)
            install_module.backfill = saved_backfill

    def current(self) -> str:
        """The phase running now (the innermost open one)."""
        for event in reversed(self.events):
            if event["end"] is None:
                return str(event["phase"])
        return "between steps"

    def progress(self, done: int, _total: int, written: int) -> None:
        self.batches.append((time.monotonic(), done, written))


# ------------------------------------------------------------------------------------------ the run


def run(admin_url: str, *, flows: int, steps: int, writers: int, seconds_cap: float,
        drafts: int | None = None, users: int = 1000, accounts: int = 100, hand_made: int = 2000,
        rate: float = 20.0, warmup: float = 2.0, tail: float = 2.0, keep: bool = False, seed: int = 1,
        say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Install stepsync into a fresh, loaded database while WRITERS sessions write; return the figures.

    ADMIN_URL: a role that may create databases and roles (a superuser: the install runs as it).
    FLOWS listed flows of STEPS steps; DRAFTS drafts (default FLOWS / 10, at least 50) for the
    writers to publish; RATE statements a second per writer. SECONDS_CAP bounds the live part
    (warm-up, install, tail; not the load): an install still running then is cancelled and the run
    reported as failed. KEEP keeps the database (and its two roles) for a look afterwards.
    """
    say = say or (lambda _line: None)
    drafts = max(50, flows // 10) if drafts is None else drafts
    users = max(1, min(users, flows + drafts))
    accounts = max(1, min(accounts, users))
    admin_url, _ = database.split_url(admin_url)
    tag = secrets.token_hex(4)
    dbname = f"stepsync_bench_install_{tag}"
    owner, client = f"stepsync_bench_owner_{tag}", f"stepsync_bench_client_{tag}"
    client_password = secrets.token_hex(16)
    result: dict[str, Any] = {
        "benchmark": "live install", "flows": flows, "steps": steps, "drafts": drafts, "users": users,
        "accounts": accounts, "hand_made": hand_made, "writers": writers, "rate_per_writer": rate,
        "seconds_cap": seconds_cap, "target_max_wait_s": TARGET_WAIT_S, "database": dbname, "roles": [owner, client],
    }
    with psycopg.connect(admin_url, autocommit=True) as admin:
        result["server_version"] = one_row(admin.execute("SHOW server_version"))[0]
        result["installed_as"] = one_row(admin.execute("SELECT current_user"))[0]
        admin.execute(pgsql.SQL("CREATE ROLE {} NOLOGIN").format(pgsql.Identifier(owner)))
        admin.execute(pgsql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            pgsql.Identifier(client), pgsql.Literal(client_password)))
        admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(dbname)))
    db_url = _with_database(admin_url, dbname)
    try:
        t0 = time.monotonic()
        with psycopg.connect(db_url, autocommit=True) as conn:
            _load(conn, owner=owner, client=client, flows=flows, drafts=drafts, steps=steps, users=users,
                  accounts=accounts, hand_made=hand_made, say=say)
            flow_ids = [r[0] for r in conn.execute("SELECT id FROM public.trees WHERE status = 'published'")]
            draft_ids = [r[0] for r in conn.execute("SELECT id FROM public.trees WHERE status = 'draft'")]
            hand_ids = [r[0] for r in conn.execute("SELECT id FROM public.step_library")]
            result["database_size"] = one_row(conn.execute(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"))[0]
        result["load_seconds"] = round(time.monotonic() - t0, 1)
        say(f"loaded {flows} listed flows x {steps} steps, {drafts} drafts in {result['load_seconds']} s")
        random.Random(seed).shuffle(draft_ids)
        _live(result, db_url=db_url, client=client, client_password=client_password, flow_ids=flow_ids,
              draft_ids=draft_ids, hand_ids=hand_ids, steps=steps, writers=writers, rate=rate,
              warmup=warmup, tail=tail, seconds_cap=seconds_cap, seed=seed, say=say)
        _check(result, db_url=db_url, flows=flows, steps=steps, hand_made=hand_made, say=say)
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(dbname)))
                for role in (client, owner):
                    admin.execute(pgsql.SQL("DROP ROLE IF EXISTS {}").format(pgsql.Identifier(role)))
    _verdict(result)
    return result


def _live(result: dict[str, Any], *, db_url: str, client: str, client_password: str, flow_ids: list[Any],
          draft_ids: list[Any], hand_ids: list[Any], steps: int, writers: int, rate: float, warmup: float,
          tail: float, seconds_cap: float, seed: int, say: Callable[[str], None]) -> None:
    """Writers and monitor up, the install, the writers' tail; figures into RESULT."""
    from stepsync import install as install_module

    shared = _Shared(flow_ids, draft_ids, hand_ids, steps)
    drafts_before = len(draft_ids)
    threads = [_Writer(n, db_url, client, client_password, shared, rate, seed * 1000 + n) for n in range(writers)]
    phases = _Phases()
    monitor = _Monitor(db_url, shared, phases)
    said: list[str] = []
    warned: list[str] = []
    install_url = _with_database(db_url, urlsplit(db_url).path.lstrip("/"), application_name=INSTALL_APP)
    live_start = time.monotonic()
    monitor.start()
    for thread in threads:
        thread.start()
    cap_hit = threading.Event()

    def cap() -> None:
        if shared.stop.wait(seconds_cap):
            return
        cap_hit.set()
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                         (INSTALL_APP,))

    watchdog = threading.Thread(target=cap, name="bench-cap", daemon=True)
    watchdog.start()
    time.sleep(min(warmup, seconds_cap / 4))
    say(f"{writers} writers running; installing")
    install_start = time.monotonic()
    error = None
    message = None
    try:
        with phases.watching():
            message = install_module.install(install_url, say=said.append, warn=warned.append,
                                             progress=phases.progress)
    except Exception as exc:  # reported in the result
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    install_end = time.monotonic()
    say(f"install {'failed: ' + error if error else 'done'} in {install_end - install_start:.1f} s")
    remaining = seconds_cap - (time.monotonic() - live_start)
    if remaining > 0:
        shared.stop.wait(min(tail, remaining))
    shared.stop.set()
    for thread in threads:
        thread.join(timeout=WRITER_STATEMENT_TIMEOUT_S + 10)
    monitor.join(timeout=10)
    watchdog.join(timeout=10)

    # The install.
    install: dict[str, Any] = {"seconds": round(install_end - install_start, 2), "message": message,
                               "error": ("cancelled at the seconds cap" if cap_hit.is_set() else error),
                               "retries": [line for line in said], "warnings": warned[:20],
                               "warning_count": len(warned)}
    summary: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for event in phases.events:
        if event["end"] is None:
            event["end"] = install_end
        entry = summary.get(event["phase"])
        if entry is None:
            order.append(event["phase"])
            entry = summary[event["phase"]] = {"phase": event["phase"], "seconds": 0.0, "runs": 0, "failed": 0}
        entry["seconds"] += event["end"] - event["start"]
        entry["runs"] += 1
        entry["failed"] += 0 if event["ok"] else 1
    accounted = sum(e["seconds"] for e in summary.values())
    listed = [summary[name] for name in order]
    listed.append({"phase": "other (preflight, alembic, version table, retry pauses)",
                   "seconds": max(0.0, install_end - install_start - accounted), "runs": 1, "failed": 0})
    for entry in listed:
        entry["seconds"] = round(entry["seconds"], 3)
    install["phases"] = listed
    backfill_events = [e for e in phases.events if e["phase"] == "backfill"]
    if backfill_events:
        b = backfill_events[-1]
        seconds = b["end"] - b["start"]
        done, written = (phases.batches[-1][1], phases.batches[-1][2]) if phases.batches else (0, 0)
        gaps = [later[0] - earlier[0] for earlier, later in zip(
            [(b["start"], 0, 0), *phases.batches[:-1]], phases.batches, strict=True)]
        install["backfill"] = {
            "seconds": round(seconds, 2), "flows": done, "entries_written": written, "batches": len(phases.batches),
            "flows_per_s": round(done / seconds, 1) if seconds else None,
            "entries_per_s": round(written / seconds, 1) if seconds else None,
            "longest_batch_s": round(max(gaps), 3) if gaps else None,
            "median_batch_s": round(_pct(gaps, 0.5), 3) if gaps else None,
        }
    result["install"] = install

    # The application's statements.
    statements = [s for t in threads for s in t.statements]
    timeline = [(e["phase"], e["start"], e["end"]) for e in phases.events]

    def window(s: Statement) -> str:
        if s.start < install_start:
            return "before the install"
        if s.start >= install_end:
            return "after the install"
        for name, start, end in timeline:
            if start <= s.start < end:
                return str(name)
        return "other (preflight, alembic, version table, retry pauses)"

    by_kind: dict[str, Any] = {}
    groups: dict[str, list[Statement]] = defaultdict(list)
    for s in statements:
        groups[s.kind].append(s)
    for kind, _weight in _Writer.KINDS:
        group = groups.get(kind, [])
        latencies = [s.seconds for s in group]
        during = [s.seconds for s in group if install_start <= s.start < install_end]
        by_kind[kind] = {
            "count": len(group), "ok": sum(s.outcome == "ok" for s in group),
            "waited": sum(s.outcome == "waited" for s in group), "errors": sum(s.outcome == "error" for s in group),
            "during_install": len(during),
            "p50_ms": round(_pct(latencies, 0.5) * 1000, 1), "p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
            "max_ms": round(max(latencies, default=0.0) * 1000, 1),
            "p99_during_install_ms": round(_pct(during, 0.99) * 1000, 1),
        }
    by_window: dict[str, Any] = {}
    windows: dict[str, list[float]] = defaultdict(list)
    for s in statements:
        windows[window(s)].append(s.seconds)
    for name in ["before the install", *order, "other (preflight, alembic, version table, retry pauses)",
                 "after the install"]:
        values = windows.get(name, [])
        if values:
            by_window[name] = {"count": len(values), "p99_ms": round(_pct(values, 0.99) * 1000, 1),
                               "max_ms": round(max(values) * 1000, 1)}
    latencies = [s.seconds for s in statements]
    longest = max(statements, key=lambda s: s.seconds, default=None)
    errors = Counter((s.kind, s.outcome, s.sqlstate, s.message) for s in statements if s.outcome != "ok")
    result["statements"] = {
        "total": len(statements),
        "during_install": sum(install_start <= s.start < install_end for s in statements),
        "max_ms": round(longest.seconds * 1000, 1) if longest else 0.0,
        "max_kind": longest.kind if longest else None,
        "max_during": window(longest) if longest else None,
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "over_target": sum(s.seconds > TARGET_WAIT_S for s in statements),
        "by_kind": by_kind, "by_phase": by_window,
        "errors": [{"kind": k, "outcome": o, "sqlstate": st, "message": m, "count": c}
                   for (k, o, st, m), c in errors.most_common()],
        "writer_failures": [t.fatal for t in threads if t.fatal],
    }
    result["bumps"] = {k: sum(t.bumps[k] for t in threads) for k in ("bump_hand_made", "bump_synced")}
    result["published_drafts"] = len(shared.published)
    result["drafts_left"] = len(shared.drafts)
    result["drafts_before"] = drafts_before
    result["lock_waits"] = {
        "samples": monitor.samples, "monitor_error": monitor.error,
        "by_blocker": sorted(monitor.waits.values(), key=lambda e: -e["max_s"])[:10],
    }
    for entry in result["lock_waits"]["by_blocker"]:
        entry["max_s"] = round(entry["max_s"], 3)


def _check(result: dict[str, Any], *, db_url: str, flows: int, steps: int, hand_made: int,
           say: Callable[[str], None]) -> None:
    """Nothing lost: every listed flow synced, the counts add up, the oracle is empty."""
    say("checking")
    with psycopg.connect(db_url, autocommit=True) as conn:
        listed, per_flow_wrong = one_row(conn.execute("""
            WITH e AS (SELECT s.source_tree_id, count(*) AS n FROM public.step_library AS s
                        WHERE s.is_flow_synced AND s.is_active GROUP BY s.source_tree_id)
            SELECT count(*), count(*) FILTER (WHERE COALESCE(e.n, 0) <> %s)
              FROM public.trees AS t LEFT JOIN e ON e.source_tree_id = t.id
             WHERE t.status = 'published' AND t.is_active""", (steps,)))
        entries, synced_usage = one_row(conn.execute(
            "SELECT count(*) FILTER (WHERE is_active), COALESCE(sum(usage_count), 0) FROM public.step_library"
            " WHERE is_flow_synced"))
        hand_rows, hand_usage = one_row(conn.execute(
            "SELECT count(*), COALESCE(sum(usage_count), 0) FROM public.step_library"
            " WHERE NOT is_flow_synced"))
        t = time.monotonic()
        oracle = one_row(conn.execute("SELECT count(*) FROM stepsync.check_library()"))[0]
        oracle_seconds = time.monotonic() - t
    inserted = result["statements"]["by_kind"]["insert_hand_made"]["ok"]
    expected_listed = flows + result["published_drafts"]
    result["checks"] = {
        "listed_flows": listed, "expected_listed_flows": expected_listed,
        "active_synced_entries": entries, "expected_entries": expected_listed * steps,
        "listed_flows_not_fully_synced": per_flow_wrong,
        "check_library_rows": oracle, "check_library_seconds": round(oracle_seconds, 1),
        "hand_made_rows": hand_rows, "expected_hand_made_rows": hand_made + inserted,
        "hand_made_usage": int(hand_usage), "expected_hand_made_usage": result["bumps"]["bump_hand_made"],
        "synced_usage": int(synced_usage), "expected_synced_usage": result["bumps"]["bump_synced"],
    }


def _verdict(result: dict[str, Any]) -> None:
    c, s = result.get("checks"), result.get("statements")
    if c is None or s is None:
        result["target"] = {"met": False, "nothing_lost": False, "no_unexpected_errors": False, "waits_ok": False}
        return
    nothing_lost = (result["install"]["error"] is None
                    and c["listed_flows"] == c["expected_listed_flows"]
                    and c["active_synced_entries"] == c["expected_entries"]
                    and c["listed_flows_not_fully_synced"] == 0 and c["check_library_rows"] == 0
                    and c["hand_made_rows"] == c["expected_hand_made_rows"]
                    and c["hand_made_usage"] == c["expected_hand_made_usage"]
                    and c["synced_usage"] == c["expected_synced_usage"])
    unexpected = sum(e["count"] for e in s["errors"] if e["outcome"] == "error") + len(s["writer_failures"])
    waited = sum(e["count"] for e in s["errors"] if e["outcome"] == "waited")
    waits_ok = s["max_ms"] <= TARGET_WAIT_S * 1000 and waited == 0
    result["target"] = {"nothing_lost": nothing_lost, "no_unexpected_errors": unexpected == 0,
                        "unexpected_errors": unexpected, "waited_errors": waited, "waits_ok": waits_ok,
                        "met": nothing_lost and unexpected == 0 and waits_ok}


# ------------------------------------------------------------------------------------------ report


def render_markdown(result: dict[str, Any]) -> str:
    """The result as a section of docs/benchmarks.md."""
    r, i, s, c, t = result, result["install"], result["statements"], result.get("checks", {}), result["target"]
    lines = [
        f"### Live install on PostgreSQL {r['server_version']}",
        "",
        (f"`stepsync install` (as `{r['installed_as']}`) into an application database of {r['flows']:,} listed"
        f" flows x {r['steps']} procedural steps, {r['drafts']:,} drafts, {r['users']:,} users, {r['accounts']:,}"
        f" accounts and {r['hand_made']:,} hand-made library rows ({r.get('database_size', '?')}, loaded in"
        f" {r['load_seconds']} s), while {r['writers']} writer sessions ({r['rate_per_writer']:g} statements/s"
        f" each, as the application's client role) renamed flows, bumped usage counts and published drafts."),
        "",
        f"**Install: {i['seconds']:.1f} s**" + (f", failed: {i['error']}" if i["error"] else "")
        + (f"; {len(i['retries'])} lock-timeout retries" if i["retries"] else "; no lock-timeout retry") + ".",
    ]
    b = i.get("backfill")
    if b:
        lines.append(f"Backfill: {b['flows']:,} flows, {b['entries_written']:,} entries in {b['seconds']:.1f} s:"
                     f" **{b['flows_per_s']:,.0f} flows/s, {b['entries_per_s']:,.0f} entries/s**;"
                     f" {b['batches']} batches, median {b['median_batch_s'] * 1000:.0f} ms,"
                     f" longest {b['longest_batch_s'] * 1000:.0f} ms.")
    lines += ["", "| install phase | seconds | runs | longest application statement started in it (ms) |",
              "|---|---:|---:|---:|"]
    for p in i["phases"]:
        w = s["by_phase"].get(p["phase"], {})
        lines.append(f"| {p['phase']} | {p['seconds']:.2f} | {p['runs']} | {w.get('max_ms', '')} |")
    for name in ("before the install", "after the install"):
        if name in s["by_phase"]:
            lines.append(f"| *({name})* | | | {s['by_phase'][name]['max_ms']} |")
    lines += ["", (f"Application statements: {s['total']:,} ({s['during_install']:,} during the install);"
              f" **longest {s['max_ms']:.0f} ms** ({s['max_kind']}, during {s['max_during']}),"
              f" p99 {s['p99_ms']:.1f} ms,"
              f" {s['over_target']} over {r['target_max_wait_s']:g} s."), "",
              "| statement | count | waited | errors | p50 ms | p99 ms | p99 during install ms | max ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind, k in s["by_kind"].items():
        lines.append(f"| {kind} | {k['count']:,} | {k['waited']} | {k['errors']} | {k['p50_ms']} | {k['p99_ms']}"
                     f" | {k['p99_during_install_ms']} | {k['max_ms']} |")
    if s["errors"]:
        lines += ["", "Failed statements:"]
        lines += [f"- {e['count']} x {e['kind']}: {e['sqlstate']} {e['message']} ({e['outcome']})" for e in s["errors"]]
    waits = r["lock_waits"]["by_blocker"]
    if waits:
        lines += ["", "Lock waits seen by the monitor (pg_stat_activity every 0.1 s), longest first:"]
        lines += [f"- {w['max_s'] * 1000:.0f} ms ({w['samples']} samples, {w['lock']}) behind {w['blocker']}"
                  for w in waits[:5]]
    if c:
        lines += ["", (f"Nothing lost: {c['listed_flows']:,} listed flows (expected {c['expected_listed_flows']:,},"
                  f" {r['published_drafts']} of them drafts published during the run),"
                  f" {c['active_synced_entries']:,} active synced entries (expected {c['expected_entries']:,}),"
                  f" {c['listed_flows_not_fully_synced']} listed flows not fully synced,"
                  f" `check_library()` {c['check_library_rows']} rows; usage bumps counted:"
                  f" hand-made {c['hand_made_usage']:,}/{c['expected_hand_made_usage']:,},"
                  f" synced {c['synced_usage']:,}/{c['expected_synced_usage']:,}.")]
    verdict = "met" if t["met"] else "MISSED"
    lines += ["", f"Target (no statement waits more than {r['target_max_wait_s']:g} s, nothing lost,"
              f" no unexpected error): **{verdict}**" + ("" if t["met"] else
              f" (waits ok: {t['waits_ok']}, nothing lost: {t['nothing_lost']},"
              f" unexpected errors: {t.get('unexpected_errors')})") + "."]
    return "\n".join(lines) + "\n"


def _throwaway() -> Any:
    """`stepsync bench`'s own server: testing.postgresql (dev extra), else an embedded throwaway."""
    from stepsync_dev.throwaway import throwaway_server

    return throwaway_server()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stepsync_dev.bench.install", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=None,
                        help="a server and a role that may create databases and roles (default: a throwaway cluster)")
    parser.add_argument("--flows", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--drafts", type=int, default=None)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0, help="statements a second per writer")
    parser.add_argument("--seconds-cap", type=float, default=1800.0)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of markdown")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"bench install: {line}", file=sys.stderr, flush=True)

    cluster = None
    url = args.database_url
    if not url:
        try:
            cluster = _throwaway()
        except ImportError as exc:
            print(f"bench install: no throwaway server here ({exc}): give --database-url", file=sys.stderr)
            return 1
        url = cluster.url()
    try:
        result = run(url, flows=args.flows, steps=args.steps, writers=args.writers, seconds_cap=args.seconds_cap,
                     drafts=args.drafts, rate=args.rate, keep=args.keep, say=say)
    except (database.StepsyncError, psycopg.Error) as exc:
        print(f"bench install: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
    print(json.dumps(result, indent=2, default=str) if args.json else render_markdown(result))
    return 0 if result["target"]["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
