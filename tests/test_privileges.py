"""Least privilege (docs/contract.md §6.7): clients that may only write trees still get a synced
library, cannot write it themselves, cannot pass for the sync, and cannot hijack it."""

from __future__ import annotations

import contextlib
import itertools

import psycopg
import pytest

from flows import Flows, step

_roles = itertools.count()


@pytest.fixture
def make_role(db):
    """Create roles for one test; they are dropped (with what they own) afterwards."""
    created = []

    def make(grants: str = "") -> str:
        name = f"{db.name}_role{next(_roles)}"
        db.conn.execute(f'CREATE ROLE "{name}" NOLOGIN')
        for statement in filter(None, (s.strip() for s in grants.format(role=f'"{name}"').split(";"))):
            db.conn.execute(statement)
        created.append(name)
        return name

    yield make
    for name in created:
        db.conn.execute(f'DROP OWNED BY "{name}"')
        db.conn.execute(f'DROP ROLE "{name}"')


@contextlib.contextmanager
def acting_as(db, role: str):
    """A new session whose current_user is ROLE (SET ROLE from the test's superuser)."""
    with db.connect() as conn:
        conn.execute(f'SET ROLE "{role}"')
        yield conn


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


def library(db, tree) -> list[tuple]:
    return db.rows("SELECT source_node_id, title, is_active FROM step_library WHERE source_tree_id = %s"
                   " ORDER BY 1", (tree,))


def test_a_client_that_may_only_update_trees_publishes_and_the_library_syncs(db, flows, make_role):
    client = make_role("GRANT SELECT, UPDATE ON trees TO {role}; GRANT SELECT ON step_library TO {role}")
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    with acting_as(db, client) as conn:
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
        assert conn.execute("SELECT count(*) FROM step_library WHERE source_tree_id = %s", (tree,)).fetchone() == (2,)
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s",
                     (psycopg.types.json.Jsonb({"steps": [step("a", "A2")]}), tree))
        conn.execute("UPDATE trees SET is_active = false WHERE id = %s", (tree,))
    assert library(db, tree) == [("a", "A2", False), ("b", "B", False)]


def test_the_client_cannot_write_the_library_nor_call_the_sync(db, flows, make_role):
    client = make_role("GRANT SELECT, UPDATE ON trees TO {role}; GRANT SELECT ON step_library TO {role}")
    tree = flows.create({"steps": [step("a", "A")]}, status="published")
    before = flows.snapshot()
    with acting_as(db, client) as conn:
        for sql in [
            "UPDATE step_library SET usage_count = 1",
            "INSERT INTO step_library (title, step_type, content) VALUES ('x', 'action', '{}')",
            "DELETE FROM step_library",
            f"SELECT stepsync.sync_tree('{tree}')",
            f"SELECT stepsync._retire('{tree}')",
            f"SELECT stepsync._sync('{tree}', 'procedural', '{{}}', false, NULL, NULL)",
        ]:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql)
            assert info.value.sqlstate == "42501", sql
            assert "permission denied" in info.value.diag.message_primary
        # what clients are meant to call works with their own rights
        assert conn.execute("SELECT source_node_id FROM stepsync.preview(%s)", (tree,)).fetchall() == [("a",)]
    assert flows.snapshot() == before


def test_an_application_role_with_full_rights_still_cannot_pass_for_the_sync(db, flows, make_role):
    app = make_role("GRANT SELECT, INSERT, UPDATE, DELETE ON trees, step_library, users TO {role};"
                    " GRANT SELECT ON accounts TO {role}; GRANT TEMPORARY ON DATABASE " + f'"{db.name}"' + " TO {role}")
    tree = flows.create({"steps": [step("a", "A")]}, status="published")
    [entry] = db.rows("SELECT id FROM step_library WHERE source_tree_id = %s", (tree,))
    before = flows.snapshot()
    with acting_as(db, app) as conn:
        conn.execute("SET stepsync.sync_writing = 'on'")
        # the trick to try: with the sync's marker set, a write from inside a trigger of one's own (as if the
        # sync's own triggers made it): the marker check and the guards refuse it all the same
        conn.execute("CREATE TEMP TABLE poke (x int)")
        conn.execute("CREATE FUNCTION pg_temp.poke() RETURNS trigger LANGUAGE plpgsql AS"
                     " $$BEGIN UPDATE public.step_library SET title = 'hijacked'; RETURN NULL; END$$")
        conn.execute("CREATE TRIGGER poke AFTER INSERT ON pg_temp.poke FOR EACH ROW EXECUTE FUNCTION pg_temp.poke()")
        for sql in ["UPDATE step_library SET title = 'hijacked' WHERE id = %(id)s",
                    "INSERT INTO pg_temp.poke VALUES (1)",
                    "DELETE FROM step_library WHERE id = %(id)s",
                    "INSERT INTO step_library"
                    " (title, step_type, content, is_flow_synced, source_tree_id, source_node_id)"
                    " VALUES ('fake', 'action', '{}', true, '" + str(tree) + "', 'zz')"]:
            with pytest.raises(psycopg.Error) as info:
                conn.execute(sql, {"id": entry[0]})
            assert info.value.sqlstate == "42501", sql
        with pytest.raises(psycopg.Error) as info:
            conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (entry[0],))
        assert info.value.diag.message_primary == "stepsync.sync_writing is reserved for the sync"
        # what the application may do, without pretending: count usage
        conn.execute("RESET stepsync.sync_writing")
        conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE id = %s", (entry[0],))
    assert db.value("SELECT usage_count FROM step_library WHERE id = %s", (entry[0],)) == 1
    assert [r for r in flows.snapshot() if r[0] == "tree"] == [r for r in before if r[0] == "tree"]


def test_deleting_a_flow_as_a_client_retires_and_detaches_its_entries(db, flows, make_role):
    client = make_role("GRANT SELECT, DELETE ON trees TO {role}")
    tree = flows.create({"steps": [step("a", "A")]}, status="published")
    with acting_as(db, client) as conn:
        conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    assert db.rows("SELECT source_node_id, source_tree_id, is_active, is_flow_synced FROM step_library") == [
        ("a", None, False, True)]


SHADOWS = """
CREATE TABLE public.hijack_log (what text);
CREATE FUNCTION public.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql AS
    $$INSERT INTO public.hijack_log VALUES ('jsonb_typeof'); SELECT 'object'$$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS
    $$INSERT INTO public.hijack_log VALUES ('now'); SELECT '2000-01-01'::timestamptz$$;
CREATE FUNCTION public.btrim(text, text) RETURNS text LANGUAGE sql AS
    $$INSERT INTO public.hijack_log VALUES ('btrim'); SELECT 'x'$$;
CREATE FUNCTION public.set_config(text, text, boolean) RETURNS text LANGUAGE sql AS
    $$INSERT INTO public.hijack_log VALUES ('set_config'); SELECT 'on'$$;
CREATE FUNCTION public.hijack_eq(text, text) RETURNS boolean LANGUAGE sql AS
    $$INSERT INTO public.hijack_log VALUES ('='); SELECT true$$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.hijack_eq);
CREATE TEMP TABLE step_library (LIKE public.step_library);
CREATE TEMP TABLE trees (LIKE public.trees)
"""


def test_a_hostile_role_with_shadowing_objects_cannot_divert_the_sync(db, flows, make_role):
    hostile = make_role("GRANT SELECT, UPDATE ON trees TO {role}; GRANT SELECT ON step_library TO {role};"
                        " GRANT CREATE ON SCHEMA public TO {role};"
                        " GRANT TEMPORARY ON DATABASE " + f'"{db.name}"' + " TO {role}")
    tree = flows.create({"steps": [step("a", "A", description="Do A"), step("b", "  B  ")]})
    with acting_as(db, hostile) as conn:
        for statement in SHADOWS.split(";\n"):
            conn.execute(statement)
        conn.execute("SET search_path = pg_temp, public, pg_catalog")
        conn.execute("UPDATE public.trees SET status = 'published' WHERE id = %s", (tree,))
        assert conn.execute("SELECT count(*) FROM pg_temp.step_library").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM public.hijack_log").fetchone() == (0,)
        preview = conn.execute("SELECT source_node_id, title FROM stepsync.preview(%s)", (tree,)).fetchall()
        assert preview == [("a", "A"), ("b", "  B  ")]
        assert conn.execute("SELECT count(*) FROM public.hijack_log").fetchone() == (0,)
    rows = db.rows("SELECT source_node_id, title, content ->> 'instructions', last_synced_at > '2001-01-01'"
                   " FROM step_library ORDER BY 1")
    assert rows == [("a", "A", "Do A", True), ("b", "  B  ", "  B  ", True)]


def test_internal_functions_are_not_executable_by_public(db):
    rows = dict(db.rows(
        "SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') FROM pg_proc p"
        " WHERE p.pronamespace = 'stepsync'::regnamespace"))
    writers = {"_sync", "_retire", "_retire_orphans", "backfill_batch", "sync_tree", "tg_set_updated_at",
               "tg_trees__sync", "tg_trees__retire_on_delete", "tg_step_library__guard",
               "tg_step_library__check_marker", "tg_step_library__guard_truncate",
               "tg_step_library__search_vector",
               # the owner's row-level security switches (docs/contract.md §12)
               "restore_policies", "enable_row_security", "disable_row_security"}
    for name, executable in rows.items():
        assert executable == (name not in writers), name
    assert db.value("SELECT has_schema_privilege('public', 'stepsync', 'USAGE')") is True
    assert db.value("SELECT has_schema_privilege('public', 'stepsync', 'CREATE')") is False


def test_security_definer_functions_are_exactly_the_sync_entry_points(db):
    definers = db.rows(
        "SELECT p.proname, pg_get_userbyid(p.proowner) = pg_get_userbyid(c.relowner)"
        " FROM pg_proc p, pg_class c WHERE p.pronamespace = 'stepsync'::regnamespace AND p.prosecdef"
        " AND c.oid = 'public.step_library'::regclass ORDER BY 1")
    # and the three row-level security helpers that must read past the caller's rights (docs/contract.md §12.2):
    # the search's ranking (it applies the caller's SELECT privilege and the rule itself), the viewer's own
    # account (no argument: never another user's), and what an update may change (yes or no, for a row the
    # caller is updating)
    assert definers == [("_may_change", True), ("_search_ranked", True), ("current_viewer_account", True),
                        ("sync_tree", True), ("tg_trees__retire_on_delete", True), ("tg_trees__sync", True)]
