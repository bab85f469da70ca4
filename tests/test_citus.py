"""The Citus design of docs/scaling.md §2, checked on a Citus cluster you name.

CI cannot run Citus (no reachable package registry ships it), so these tests
run only when STEPSYNC_CITUS_DSN names the coordinator of an existing cluster:

    STEPSYNC_CITUS_DSN=postgresql://user@coordinator:5432/db python -m pytest tests/test_citus.py -v

Without it every test is skipped. With it, the database must have the citus
extension and every node `citus.enable_unsafe_triggers = on`; the role must
be allowed to create schemas (and roles, for the forged-marker test, which is
skipped otherwise). Everything is built in a schema of its own,
stepsync_citus_<pid>, dropped at the end.

What is tested is the design on a reduced prototype, not the product (the
product's schema cannot be distributed as it is: that is the first test):
trees distributed by id; step_library by tree_key, co-located; users a
reference table; a sync split into shard-local statements, each filtered by
tree_key (§2.3); the marker and the guards (§2.4).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

DSN_ENV = "STEPSYNC_CITUS_DSN"
DSN = os.environ.get(DSN_ENV)
MARKER = "stepsync_citus.sync_writing"

pytestmark = pytest.mark.skipif(
    not DSN, reason=f"{DSN_ENV} is not set: these tests need an existing Citus cluster (docs/scaling.md §2.6)")


def prototype_sql(schema: str) -> list[str]:
    """The prototype, statement by statement, in schema SCHEMA (docs/scaling.md §2.1-§2.4)."""
    s = schema
    return [
        f"CREATE SCHEMA {s}",
        f"CREATE TABLE {s}.users (id uuid PRIMARY KEY, account_id uuid)",
        f"SELECT create_reference_table('{s}.users')",
        f"""CREATE TABLE {s}.trees (
                id uuid PRIMARY KEY,
                name text NOT NULL,
                tree_structure jsonb NOT NULL DEFAULT '{{}}',
                status text NOT NULL DEFAULT 'draft',
                is_active boolean NOT NULL DEFAULT true,
                account_id uuid,
                author_id uuid NOT NULL)""",
        f"SELECT create_distributed_table('{s}.trees', 'id')",
        f"ALTER TABLE {s}.trees ADD FOREIGN KEY (author_id) REFERENCES {s}.users (id)",
        f"""CREATE TABLE {s}.step_library (
                tree_key uuid NOT NULL DEFAULT gen_random_uuid(),
                id uuid NOT NULL DEFAULT gen_random_uuid(),
                title text NOT NULL,
                content jsonb NOT NULL,
                visibility text NOT NULL DEFAULT 'private',
                created_by uuid,
                account_id uuid,
                usage_count integer NOT NULL DEFAULT 0,
                is_active boolean NOT NULL DEFAULT true,
                source_tree_id uuid,
                source_node_id varchar(255),
                is_flow_synced boolean NOT NULL DEFAULT false,
                last_synced_at timestamptz,
                forked_from_id uuid,
                PRIMARY KEY (tree_key, id),
                CONSTRAINT step_library_source_key UNIQUE (tree_key, source_node_id),
                CONSTRAINT step_library_source_check
                    CHECK (is_flow_synced OR (source_tree_id IS NULL AND source_node_id IS NULL)),
                CONSTRAINT step_library_synced_active_check
                    CHECK (NOT (is_flow_synced AND is_active) OR source_tree_id IS NOT NULL))""",
        f"SELECT create_distributed_table('{s}.step_library', 'tree_key', colocate_with => '{s}.trees')",
        f"ALTER TABLE {s}.step_library ADD FOREIGN KEY (created_by) REFERENCES {s}.users (id)",
        # The search index's expression function must exist on every worker.
        f"""CREATE FUNCTION {s}.search_document(p_title text) RETURNS tsvector
                LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
                AS $$ SELECT pg_catalog.to_tsvector('pg_catalog.english', COALESCE(p_title, '')) $$""",
        f"SELECT create_distributed_function('{s}.search_document(text)')",
        (f"CREATE INDEX step_library_search_idx ON {s}.step_library USING gin ({s}.search_document(title))"
         " WHERE is_active"),
        # The sync, split into shard-local statements (docs/scaling.md §2.3): every statement that
        # reads or writes step_library filters by tree_key = the flow's id.
        f"""CREATE FUNCTION {s}.tg_trees__sync() RETURNS trigger
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
                AS $fn$
            DECLARE
                v_now timestamptz := pg_catalog.now();
                v_nodes jsonb;
                v_entries jsonb;
                v_rewrite uuid[];
                v_retire uuid[];
            BEGIN
                PERFORM pg_catalog.set_config('{MARKER}', 'on', true);
                IF NEW.status = 'published' AND NEW.is_active THEN
                    -- 0. the nodes (pure: no table)
                    v_nodes := COALESCE((
                        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                   'node_id', e.v ->> 'id', 'title', e.v ->> 'title',
                                   'content', pg_catalog.jsonb_build_object(
                                       'instructions', COALESCE(e.v ->> 'description', e.v ->> 'title')))
                                   ORDER BY e.i)
                          FROM pg_catalog.jsonb_array_elements(NEW.tree_structure -> 'steps')
                               WITH ORDINALITY AS e (v, i)
                         WHERE e.v ->> 'type' = 'procedure_step'), '[]');
                    -- 1. the flow's entries (one shard, no lock)
                    v_entries := COALESCE((
                        SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                                   'id', s.id, 'node_id', s.source_node_id, 'title', s.title,
                                   'content', s.content, 'account_id', s.account_id, 'is_active', s.is_active))
                          FROM {s}.step_library AS s
                         WHERE s.tree_key = NEW.id AND s.is_flow_synced), '[]');
                    -- 2. pairs, in memory
                    v_rewrite := ARRAY(
                        SELECT (x ->> 'id')::uuid FROM pg_catalog.jsonb_array_elements(v_entries) AS x
                         WHERE EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v_nodes) AS n
                                        WHERE n ->> 'node_id' = x ->> 'node_id'
                                          AND (n ->> 'title', n -> 'content', NEW.account_id, true)
                                              IS DISTINCT FROM (x ->> 'title', x -> 'content',
                                                                (x ->> 'account_id')::uuid,
                                                                (x ->> 'is_active')::boolean)));
                    v_retire := ARRAY(
                        SELECT (x ->> 'id')::uuid FROM pg_catalog.jsonb_array_elements(v_entries) AS x
                         WHERE (x ->> 'is_active')::boolean
                           AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(v_nodes) AS n
                                            WHERE n ->> 'node_id' = x ->> 'node_id'));
                    -- 3. lock what will change, in source_node_id order (one shard)
                    PERFORM 1 FROM {s}.step_library AS s
                      WHERE s.tree_key = NEW.id AND s.id = ANY (v_rewrite || v_retire)
                      ORDER BY s.source_node_id
                        FOR NO KEY UPDATE;
                    -- 4. upsert new and differing entries (one shard)
                    INSERT INTO {s}.step_library AS s
                           (tree_key, title, content, visibility, created_by, account_id,
                            is_flow_synced, source_tree_id, source_node_id, last_synced_at, is_active)
                    SELECT NEW.id, n ->> 'title', n -> 'content', 'team', NEW.author_id, NEW.account_id,
                           true, NEW.id, n ->> 'node_id', v_now, true
                      FROM pg_catalog.jsonb_array_elements(v_nodes) AS n
                     WHERE NOT EXISTS (
                               SELECT 1 FROM pg_catalog.jsonb_array_elements(v_entries) AS x
                                WHERE x ->> 'node_id' = n ->> 'node_id'
                                  AND (n ->> 'title', n -> 'content', NEW.account_id, true)
                                      IS NOT DISTINCT FROM (x ->> 'title', x -> 'content',
                                                            (x ->> 'account_id')::uuid,
                                                            (x ->> 'is_active')::boolean))
                    ON CONFLICT (tree_key, source_node_id) DO UPDATE
                       SET title = EXCLUDED.title, content = EXCLUDED.content, account_id = EXCLUDED.account_id,
                           source_tree_id = EXCLUDED.source_tree_id, last_synced_at = EXCLUDED.last_synced_at,
                           is_active = true
                     WHERE (s.title, s.content, s.account_id, s.is_active, s.source_tree_id)
                           IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.content, EXCLUDED.account_id, true,
                                             EXCLUDED.source_tree_id);
                    -- 5. retire entries whose node is gone (one shard)
                    UPDATE {s}.step_library AS s SET is_active = false
                     WHERE s.tree_key = NEW.id AND s.id = ANY (v_retire);
                ELSE
                    PERFORM 1 FROM {s}.step_library AS s
                      WHERE s.tree_key = NEW.id AND s.is_flow_synced AND s.is_active
                      ORDER BY s.source_node_id
                        FOR NO KEY UPDATE;
                    UPDATE {s}.step_library AS s SET is_active = false
                     WHERE s.tree_key = NEW.id AND s.is_flow_synced AND s.is_active;
                END IF;
                PERFORM pg_catalog.set_config('{MARKER}', '', true);
                RETURN NULL;
            END;
            $fn$""",
        f"""CREATE TRIGGER t30_sync_on_insert AFTER INSERT ON {s}.trees FOR EACH ROW
                WHEN (NEW.status = 'published' AND NEW.is_active)
                EXECUTE FUNCTION {s}.tg_trees__sync()""",
        f"""CREATE TRIGGER t31_sync_on_update AFTER UPDATE OF status, is_active, tree_structure ON {s}.trees
                FOR EACH ROW
                WHEN ((NEW.status = 'published' AND NEW.is_active
                       AND (OLD.status <> 'published' OR NOT OLD.is_active
                            OR OLD.tree_structure <> NEW.tree_structure))
                      OR (OLD.is_active AND NOT NEW.is_active))
                EXECUTE FUNCTION {s}.tg_trees__sync()""",
        # The read-only guard and the marker check (docs/scaling.md §2.4).
        f"""CREATE FUNCTION {s}.tg_step_library__guard() RETURNS trigger
                LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
                AS $fn$
            BEGIN
                IF (NEW.tree_key, NEW.id, NEW.title, NEW.content, NEW.visibility, NEW.is_active,
                    NEW.source_tree_id, NEW.source_node_id, NEW.is_flow_synced, NEW.last_synced_at)
                   IS DISTINCT FROM
                   (OLD.tree_key, OLD.id, OLD.title, OLD.content, OLD.visibility, OLD.is_active,
                    OLD.source_tree_id, OLD.source_node_id, OLD.is_flow_synced, OLD.last_synced_at) THEN
                    RAISE EXCEPTION 'library step % is managed by flow % and is read-only', OLD.id, OLD.tree_key
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END;
            $fn$""",
        f"""CREATE TRIGGER t05_guard_update BEFORE UPDATE ON {s}.step_library FOR EACH ROW
                WHEN (pg_catalog.current_setting('{MARKER}', true) IS DISTINCT FROM 'on' AND OLD.is_flow_synced)
                EXECUTE FUNCTION {s}.tg_step_library__guard()""",
        f"""CREATE FUNCTION {s}.tg_step_library__check_marker() RETURNS trigger
                LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
                AS $fn$
            BEGIN
                IF (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = TG_RELID)
                   IS DISTINCT FROM pg_catalog.to_regrole(current_user)::oid THEN
                    RAISE EXCEPTION '{MARKER} is reserved for the sync'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NULL;
            END;
            $fn$""",
        f"""CREATE TRIGGER t04_check_marker BEFORE INSERT OR UPDATE OR DELETE ON {s}.step_library
                FOR EACH STATEMENT
                WHEN (pg_catalog.current_setting('{MARKER}', true) = 'on')
                EXECUTE FUNCTION {s}.tg_step_library__check_marker()""",
    ]


class Cluster:
    """The coordinator connection and the prototype's schema name."""

    def __init__(self, conn: psycopg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    def q(self, text: str) -> str:
        return text.replace("{s}", self.schema)

    def rows(self, text: str, params: tuple = ()) -> list[tuple]:
        return self.conn.execute(self.q(text), params).fetchall()

    def value(self, text: str, params: tuple = ()):
        row = self.conn.execute(self.q(text), params).fetchone()
        return None if row is None else row[0]

    def user(self) -> uuid.UUID:
        user_id = uuid.uuid4()
        self.conn.execute(self.q("INSERT INTO {s}.users (id, account_id) VALUES (%s, %s)"), (user_id, uuid.uuid4()))
        return user_id

    def flow(self, steps: list[dict], author: uuid.UUID, status: str = "draft") -> uuid.UUID:
        tree_id = uuid.uuid4()
        self.conn.execute(self.q(
            "INSERT INTO {s}.trees (id, name, tree_structure, status, author_id) VALUES (%s, 'flow', %s, %s, %s)"),
            (tree_id, Jsonb({"steps": steps}), status, author))
        return tree_id

    def library(self, tree_id: uuid.UUID) -> dict[str, tuple]:
        return {r[0]: r[1:] for r in self.rows(
            "SELECT source_node_id, title, is_active, usage_count, last_synced_at, id FROM {s}.step_library"
            " WHERE tree_key = %s AND is_flow_synced", (tree_id,))}


def step(node_id: str, title: str) -> dict:
    return {"id": node_id, "type": "procedure_step", "title": title}


@pytest.fixture(scope="module")
def citus() -> Iterator[Cluster]:
    assert DSN
    try:
        conn = psycopg.connect(DSN, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        pytest.fail(f"{DSN_ENV}: cannot connect: {str(exc).strip().splitlines()[0]}")
    with conn:
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'").fetchone()
        if version is None:
            pytest.fail(f"{DSN_ENV} names a database without the citus extension (CREATE EXTENSION citus)")
        workers = [r[0] for r in conn.execute(
            "SELECT result FROM run_command_on_workers($$SHOW citus.enable_unsafe_triggers$$)").fetchall()]
        coordinator = conn.execute("SHOW citus.enable_unsafe_triggers").fetchone()[0]
        if coordinator != "on" or any(w != "on" for w in workers):
            pytest.fail("set citus.enable_unsafe_triggers = on on every node (ALTER SYSTEM SET"
                        " citus.enable_unsafe_triggers = on; SELECT pg_reload_conf();), on the coordinator"
                        f" and the workers: coordinator {coordinator}, workers {workers}")
        schema = f"stepsync_citus_{os.getpid()}"
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        try:
            for statement in prototype_sql(schema):
                conn.execute(statement)
            yield Cluster(conn, schema)
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- what Citus refuses in today's schema (docs/scaling.md §2.5) --------------------------------------------------

def test_a_primary_key_without_the_distribution_column_is_refused(citus):
    citus.conn.execute(citus.q("CREATE TABLE {s}.pk_on_id (tree_key uuid NOT NULL, id uuid PRIMARY KEY)"))
    try:
        with pytest.raises(psycopg.Error):
            citus.conn.execute(citus.q("SELECT create_distributed_table('{s}.pk_on_id', 'tree_key')"))
    finally:
        citus.conn.execute(citus.q("DROP TABLE {s}.pk_on_id"))


def test_a_set_null_foreign_key_on_the_distribution_column_is_refused(citus):
    citus.conn.execute(citus.q("CREATE TABLE {s}.fk_set_null (tree_key uuid, id uuid, PRIMARY KEY (tree_key, id))"))
    try:
        citus.conn.execute(citus.q(
            "SELECT create_distributed_table('{s}.fk_set_null', 'tree_key', colocate_with => '{s}.trees')"))
        with pytest.raises(psycopg.Error) as refused:
            citus.conn.execute(citus.q("ALTER TABLE {s}.fk_set_null ADD FOREIGN KEY (tree_key)"
                                       " REFERENCES {s}.trees (id) ON DELETE SET NULL"))
        assert "SET NULL" in (refused.value.diag.message_detail or str(refused.value))
    finally:
        citus.conn.execute(citus.q("DROP TABLE {s}.fk_set_null"))


def test_the_distribution_column_cannot_be_null_or_updated(citus):
    citus.conn.execute(citus.q("CREATE TABLE {s}.nullable_key (k uuid, v integer)"))
    try:
        citus.conn.execute(citus.q("SELECT create_distributed_table('{s}.nullable_key', 'k')"))
        with pytest.raises(psycopg.Error):
            citus.conn.execute(citus.q("INSERT INTO {s}.nullable_key (k, v) VALUES (NULL, 1)"))
        key = uuid.uuid4()
        citus.conn.execute(citus.q("INSERT INTO {s}.nullable_key (k, v) VALUES (%s, 1)"), (key,))
        with pytest.raises(psycopg.Error):
            citus.conn.execute(citus.q("UPDATE {s}.nullable_key SET k = %s WHERE k = %s"), (uuid.uuid4(), key))
        with pytest.raises(psycopg.Error):
            citus.conn.execute(citus.q("UPDATE {s}.nullable_key SET k = NULL WHERE k = %s"), (key,))
    finally:
        citus.conn.execute(citus.q("DROP TABLE {s}.nullable_key"))


def test_row_checks_still_hold(citus):
    with pytest.raises(psycopg.errors.CheckViolation):
        citus.conn.execute(citus.q(
            "INSERT INTO {s}.step_library (tree_key, title, content, source_node_id) VALUES (%s, 'x', '{}', 'n1')"),
            (uuid.uuid4(),))


# --- the design at work (docs/scaling.md §2.1-§2.3) ---------------------------------------------------------------

def test_publish_republish_retire_and_deactivate(citus):
    author = citus.user()
    tree = citus.flow([step("s1", "Stop"), step("s2", "Start")], author)
    assert citus.library(tree) == {}                                       # a draft syncs nothing

    citus.conn.execute(citus.q("UPDATE {s}.trees SET status = 'published' WHERE id = %s"), (tree,))
    first = citus.library(tree)
    assert {k: v[:3] for k, v in first.items()} == {"s1": ("Stop", True, 0), "s2": ("Start", True, 0)}

    citus.conn.execute(citus.q("UPDATE {s}.step_library SET usage_count = usage_count + 1"
                               " WHERE tree_key = %s AND id = %s"), (tree, first["s2"][4]))
    citus.conn.execute(citus.q("UPDATE {s}.trees SET tree_structure = %s WHERE id = %s"),
                       (Jsonb({"steps": [step("s1", "Stop first"), step("s2", "Start")]}), tree))
    second = citus.library(tree)
    assert second["s1"][:2] == ("Stop first", True) and second["s1"][3] > first["s1"][3]
    assert second["s2"] == (*first["s2"][:2], 1, first["s2"][3], first["s2"][4])   # not written by the sync

    citus.conn.execute(citus.q("UPDATE {s}.trees SET tree_structure = %s WHERE id = %s"),
                       (Jsonb({"steps": [step("s2", "Start")]}), tree))
    third = citus.library(tree)
    assert third["s1"][1] is False and third["s2"] == second["s2"]

    citus.conn.execute(citus.q("UPDATE {s}.trees SET is_active = false WHERE id = %s"), (tree,))
    assert {k: v[1] for k, v in citus.library(tree).items()} == {"s1": False, "s2": False}
    assert citus.library(tree)["s2"][2] == 1                                # counts kept


def test_one_statement_publishes_flows_on_every_worker(citus):
    author = citus.user()
    trees = [citus.flow([step("a", f"Flow {i} step a"), step("b", f"Flow {i} step b")], author) for i in range(20)]
    citus.conn.execute(citus.q("UPDATE {s}.trees SET status = 'published' WHERE id = ANY (%s)"), (trees,))
    for tree in trees:
        assert {k: v[1] for k, v in citus.library(tree).items()} == {"a": True, "b": True}
    nodes = citus.value(
        "SELECT count(DISTINCT (p.nodename, p.nodeport)) FROM pg_dist_shard_placement AS p"   # one host: tell by port
        " WHERE p.shardid IN (SELECT get_shard_id_for_distribution_column('{s}.trees', t) FROM unnest(%s::uuid[]) t)",
        (trees,))
    workers = citus.value("SELECT count(*) FROM citus_get_active_worker_nodes()")
    assert nodes >= min(workers, 2)   # 20 flows over the default 32 shards: on one worker only by a fluke


def test_the_search_index_function_runs_on_the_workers(citus):
    author = citus.user()
    tree = citus.flow([step("q1", "Reseat the fibre cable")], author, status="published")
    hits = citus.rows("SELECT tree_key FROM {s}.step_library WHERE is_active"
                      " AND {s}.search_document(title) @@ pg_catalog.to_tsquery('pg_catalog.english', 'fibre')")
    assert (tree,) in hits


# --- the marker on workers (docs/scaling.md §2.4) -----------------------------------------------------------------

def test_a_direct_edit_of_a_synced_row_is_refused(citus):
    author = citus.user()
    tree = citus.flow([step("g1", "Guarded")], author, status="published")
    entry = citus.library(tree)["g1"][4]
    with pytest.raises(psycopg.Error) as refused:
        citus.conn.execute(citus.q("UPDATE {s}.step_library SET title = 'edited' WHERE tree_key = %s AND id = %s"),
                           (tree, entry))
    assert "read-only" in str(refused.value)
    assert citus.library(tree)["g1"][0] == "Guarded"


@pytest.fixture
def client(citus) -> Iterator[psycopg.Connection]:
    """A session of a role that does not own the tables, with UPDATE on both."""
    role = f"stepsync_citus_client_{os.getpid()}_{secrets.token_hex(3)}"
    password = secrets.token_hex(16)
    ident = sql.Identifier(role)
    try:
        citus.conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password)))
    except psycopg.Error as exc:
        pytest.skip(f"cannot create a client role: {str(exc).strip().splitlines()[0]}")
    try:
        schema = sql.Identifier(citus.schema)
        citus.conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
        citus.conn.execute(sql.SQL("GRANT SELECT, UPDATE ON {}.trees, {}.step_library TO {}")
                           .format(schema, schema, ident))
        citus.conn.execute(sql.SQL("GRANT SELECT ON {}.users TO {}").format(schema, ident))
        try:
            conn = psycopg.connect(psycopg.conninfo.make_conninfo(DSN, user=role, password=password),
                                   autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            pytest.skip(f"cannot connect as the new role {role}: {str(exc).strip().splitlines()[0]}")
        with conn:
            yield conn
    finally:
        schema = sql.Identifier(citus.schema)
        # One table a statement: one REVOKE over several distributed and reference tables after parallel DDL
        # fails on Citus (XX000, CITUS-FINDINGS).
        for table in ("trees", "step_library", "users"):
            citus.conn.execute(sql.SQL("REVOKE ALL ON {}.{} FROM {}").format(schema, sql.Identifier(table), ident))
        citus.conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(schema, ident))
        citus.conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))


@pytest.mark.parametrize("propagate", ["none", "local"])
def test_a_marker_set_by_a_client_is_refused(citus, client, propagate):
    author = citus.user()
    tree = citus.flow([step("m1", "Marked")], author)
    client.execute(citus.q("UPDATE {s}.trees SET status = 'published' WHERE id = %s"), (tree,))   # §6.7 on Citus
    entry = citus.library(tree)["m1"][4]
    with client.transaction():
        client.execute(citus.q("UPDATE {s}.step_library SET usage_count = usage_count + 1"
                               " WHERE tree_key = %s AND id = %s"), (tree, entry))
    assert citus.library(tree)["m1"][2] == 1
    with pytest.raises(psycopg.Error) as refused, client.transaction():
        client.execute(sql.SQL("SET LOCAL citus.propagate_set_commands = {}").format(sql.Literal(propagate)))
        client.execute(f"SET LOCAL {MARKER} = 'on'")
        client.execute(citus.q("UPDATE {s}.step_library SET title = 'forged' WHERE tree_key = %s AND id = %s"),
                       (tree, entry))
    assert "read-only" in str(refused.value) or "reserved for the sync" in str(refused.value)
    assert citus.library(tree)["m1"][0] == "Marked"
