"""Library rules (docs/contract.md §6.1-§6.4, §6.8): read-only synced rows, the entries view,
visibility, forks and search."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from flows import Flows, step


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


@pytest.fixture
def synced(flows):
    """A published flow with two entries; returns (tree id, {node id: step id})."""
    tree = flows.create({"steps": [step("a", "Restart the service", commands="systemctl restart app"),
                                   step("b", "Check the logs")]}, name="Ops runbook", is_public=True)
    flows.publish(tree)
    return tree, {r["source_node_id"]: r["id"] for r in flows.library(tree)}


def refused(conn, sql, params=None) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(sql, params)
    return info.value


FORK_HINT = ("Fork it with stepsync.fork_step(step_id, user_id) to get an editable copy,"
             " or change the flow and publish it again.")


@pytest.mark.parametrize("assignment, changed", [
    ("title = 'Mine now'", "title"),
    ("content = '{}'::jsonb", "content"),
    ("visibility = 'private'", "visibility"),
    ("is_active = false", "is_active"),
    ("source_node_id = 'z'", "source_node_id"),
    ("source_tree_id = NULL", "source_tree_id"),
    ("is_flow_synced = false", "is_flow_synced"),
    ("created_by = NULL, account_id = NULL", "account_id, created_by"),
    ("last_synced_at = now() - interval '1 day'", "last_synced_at"),
    ("usage_count = usage_count + 1, title = 'x'", "title"),
])
def test_direct_update_of_synced_content_is_refused(flows, synced, assignment, changed):
    tree, ids = synced
    before = flows.snapshot()
    error = refused(flows.conn, f"UPDATE step_library SET {assignment} WHERE id = %s", (ids["a"],))
    assert error.sqlstate == "42501"
    assert error.diag.message_primary == f"library step {ids['a']} is managed by flow {tree} and is read-only"
    assert error.diag.message_detail == (
        f"The update changes {changed}; only usage_count, rating and rating_count may change.")
    assert error.diag.message_hint == FORK_HINT
    assert flows.snapshot() == before


def test_usage_and_ratings_stay_writable_and_orm_rewrites_pass(flows, synced):
    tree, ids = synced
    flows.conn.execute("UPDATE step_library SET usage_count = usage_count + 2, rating = 3.5, rating_count = 1,"
                       " updated_at = now() WHERE id = %s", (ids["a"],))
    flows.conn.execute(
        "UPDATE step_library SET title = title, step_type = step_type, content = content, visibility = visibility,"
        " created_by = created_by, account_id = account_id, is_active = is_active, created_at = created_at,"
        " source_tree_id = source_tree_id, source_node_id = source_node_id, is_flow_synced = is_flow_synced,"
        " last_synced_at = last_synced_at, forked_from_id = forked_from_id, usage_count = usage_count + 1"
        " WHERE source_tree_id = %s", (tree,))
    assert [(r["source_node_id"], r["usage_count"], r["rating"] and str(r["rating"]), r["rating_count"])
            for r in flows.library(tree)] == [("a", 3, "3.50", 1), ("b", 1, None, 0)]


def test_direct_insert_of_a_synced_row_is_refused(flows, synced):
    tree, _ = synced
    before = flows.snapshot()
    for columns, values in [
        ("is_flow_synced", "true"),
        ("source_tree_id", f"'{tree}'"),
        ("source_node_id", "'n1'"),
        ("is_flow_synced, source_tree_id, source_node_id", f"true, '{tree}', 'n1'"),
    ]:
        error = refused(flows.conn, f"INSERT INTO step_library (title, step_type, content, {columns})"
                                    f" VALUES ('Sneaky', 'action', '{{}}', {values})")
        assert error.sqlstate == "42501"
        assert error.diag.message_primary == "only the sync may create synced library steps"
        assert "stepsync.fork_step" in error.diag.message_hint
    assert flows.snapshot() == before


def test_a_hand_made_row_cannot_be_made_synced(flows, synced):
    tree, _ = synced
    hand = flows.conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Mine', 'action', '{}')"
                              " RETURNING id").fetchone()[0]
    flows.conn.execute("UPDATE step_library SET title = 'Still mine', visibility = 'team' WHERE id = %s", (hand,))
    before = flows.snapshot()
    for assignment in ["is_flow_synced = true", f"source_tree_id = '{tree}'", "source_node_id = 'a'"]:
        error = refused(flows.conn, f"UPDATE step_library SET {assignment} WHERE id = %s", (hand,))
        assert error.sqlstate == "42501"
        assert error.diag.message_primary == f"library step {hand} is hand-made and cannot be turned into a synced step"
    assert flows.snapshot() == before


def test_active_synced_rows_cannot_be_deleted_retired_ones_can(flows, synced):
    tree, ids = synced
    before = flows.snapshot()
    error = refused(flows.conn, "DELETE FROM step_library WHERE id = %s", (ids["a"],))
    assert error.sqlstate == "42501"
    assert error.diag.message_primary == (
        f"library step {ids['a']} is managed by flow {tree} and cannot be deleted while it is active")
    assert flows.snapshot() == before
    flows.update(tree, tree_structure={"steps": [step("a", "Restart the service", commands="systemctl restart app")]})
    assert flows.conn.execute("DELETE FROM step_library WHERE id = %s", (ids["b"],)).rowcount == 1
    assert [r["source_node_id"] for r in flows.library(tree)] == ["a"]


def test_the_entries_view_has_every_column_and_the_source_flow_name(flows, synced):
    tree, ids = synced
    hand = flows.conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Mine', 'action', '{}')"
                              " RETURNING id").fetchone()[0]
    # Every column of the table but search_vector: stepsync's internal search keys, wide and useless to
    # a reader (docs/contract.md §6.2).
    table_columns = [r[0] for r in flows.conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'step_library'::regclass AND attnum > 0"
        " AND NOT attisdropped AND attname <> 'search_vector' ORDER BY attnum")]
    view_columns = [r[0] for r in flows.conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'step_library_entries'::regclass ORDER BY attnum")]
    assert view_columns == [*table_columns, "source_tree_name"]
    rows = flows.conn.execute(
        "SELECT id, source_tree_name FROM step_library_entries ORDER BY source_node_id NULLS LAST").fetchall()
    assert rows == [(ids["a"], "Ops runbook"), (ids["b"], "Ops runbook"), (hand, None)]
    with flows.conn.cursor(row_factory=dict_row) as cur:
        entry = cur.execute("SELECT * FROM step_library_entries WHERE id = %s", (ids["a"],)).fetchone()
        table = cur.execute("SELECT * FROM step_library WHERE id = %s", (ids["a"],)).fetchone()
    assert {k: v for k, v in entry.items() if k != "source_tree_name"} == {
        k: v for k, v in table.items() if k != "search_vector"}
    flows.conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    assert flows.conn.execute("SELECT source_tree_name FROM step_library_entries WHERE id = %s",
                              (ids["a"],)).fetchone() == (None,)


@pytest.fixture
def people(flows):
    """Steps of every visibility from two accounts, and who should see what."""
    conn, a = flows.conn, flows.actors
    loner = conn.execute("INSERT INTO users (email) VALUES ('loner@nowhere.test') RETURNING id").fetchone()[0]
    teammate = conn.execute("INSERT INTO users (email, account_id) VALUES ('mate@acme.test', %s) RETURNING id",
                            (a.account,)).fetchone()[0]

    def hand(title, visibility, created_by, account_id, active=True):
        return conn.execute(
            "INSERT INTO step_library (title, step_type, content, visibility, created_by, account_id, is_active)"
            " VALUES (%s, 'action', '{}', %s, %s, %s, %s) RETURNING id",
            (title, visibility, created_by, account_id, active)).fetchone()[0]

    steps = {
        "public": hand("public", "public", a.outsider, a.other_account),
        "acme-team": hand("acme team", "team", a.author, a.account),
        "other-team": hand("other team", "team", a.outsider, a.other_account),
        "author-private": hand("author private", "private", a.author, a.account),
        "loner-private": hand("loner private", "private", loner, None),
        "team-without-account": hand("team without account", "team", a.outsider, None),
        "retired-public": hand("retired public", "public", a.author, a.account, active=False),
    }
    return {"loner": loner, "teammate": teammate, "author": a.author, "outsider": a.outsider}, steps


def visible(conn, user) -> set:
    return {r[0] for r in conn.execute("SELECT title FROM stepsync.visible_steps(%s)", (user,))}


def test_visible_steps_follows_the_rules(flows, people):
    users, _ = people
    assert visible(flows.conn, users["author"]) == {"public", "acme team", "author private"}
    assert visible(flows.conn, users["teammate"]) == {"public", "acme team"}
    assert visible(flows.conn, users["outsider"]) == {"public", "other team", "team without account"}
    assert visible(flows.conn, users["loner"]) == {"public", "loner private"}
    assert visible(flows.conn, uuid.uuid4()) == {"public"}
    row = flows.conn.execute("SELECT * FROM stepsync.visible_steps(%s) WHERE title = 'public'",
                             (users["loner"],)).fetchone()
    assert len(row) == 19  # the view's columns


def test_fork_step_makes_a_private_editable_copy(flows, synced):
    tree, ids = synced
    a = flows.actors
    flows.conn.execute("UPDATE step_library SET usage_count = 12, rating = 4, rating_count = 3 WHERE id = %s",
                       (ids["a"],))
    fork = flows.conn.execute("SELECT stepsync.fork_step(%s, %s)", (ids["a"], a.outsider)).fetchone()[0]
    [original] = flows.library(where=f"id = '{ids['a']}'")
    [copy] = flows.library(where=f"id = '{fork}'")
    assert {k: copy[k] for k in ("title", "step_type", "content")} == {
        k: original[k] for k in ("title", "step_type", "content")}
    assert (copy["visibility"], copy["created_by"], copy["account_id"], copy["forked_from_id"], copy["usage_count"],
            copy["rating"], copy["rating_count"], copy["is_flow_synced"], copy["source_tree_id"],
            copy["source_node_id"], copy["is_active"]) == (
        "private", a.outsider, a.other_account, ids["a"], 0, None, 0, False, None, None, True)
    flows.conn.execute("UPDATE step_library SET title = 'My way', content = '{\"instructions\": \"mine\"}'"
                       " WHERE id = %s", (fork,))
    flows.update(tree, tree_structure={"steps": [step("a", "Changed upstream")]})
    assert flows.library(where=f"id = '{fork}'")[0]["title"] == "My way"


def test_fork_step_refuses_the_invisible_the_retired_and_the_unknown_alike(flows, people):
    users, steps = people
    conn = flows.conn
    before = flows.snapshot()
    cases = [
        (steps["author-private"], users["teammate"]),   # private to someone else
        (steps["other-team"], users["author"]),         # another account's team step
        (steps["retired-public"], users["author"]),     # retired
        (uuid.uuid4(), users["author"]),                # no such step
        (steps["public"], uuid.uuid4()),                # no such user
    ]
    for step_id, user in cases:
        error = refused(conn, "SELECT stepsync.fork_step(%s, %s)", (step_id, user))
        assert error.sqlstate == "P0002"
        assert error.diag.message_primary == f"step {step_id} cannot be forked by user {user}"
        assert error.diag.message_detail == ("The step does not exist, is retired or is not visible to the user,"
                                             " or the user does not exist.")
    assert flows.snapshot() == before
    assert conn.execute("SELECT stepsync.fork_step(%s, %s)", (steps["loner-private"], users["loner"])).fetchone()[0]


def test_search_finds_ranks_and_filters_visible_steps(flows):
    a = flows.actors
    restart = flows.create({"steps": [
        {"id": "hdr", "type": "section_header", "title": "Networking"},
        step("r1", "Restart nginx", description="Reload the web server configuration",
             commands=[{"code": "systemctl restart nginx", "language": "bash"}]),
        step("r2", "Check disk space", description="Before you restart anything", commands="df -h"),
        step("r3", "Flush DNS cache", expected_outcome="Names resolve after the restart"),
    ]}, name="Web runbook", is_public=True)
    private_flow = flows.create({"steps": [step("p1", "Restart the secret service")]}, name="Secret",
                                account=a.account, is_public=False)
    flows.publish(restart)
    flows.publish(private_flow)
    hits = flows.conn.execute(
        "SELECT source_node_id, source_tree_name, rank FROM stepsync.search_steps(%s, 'restart')",
        (a.outsider,)).fetchall()
    assert [h[0] for h in hits] == ["r1", "r2", "r3"]     # title beats instructions beats help text
    assert hits[0][1] == "Web runbook" and hits[0][2] > hits[1][2] > hits[2][2] > 0
    team_hits = [h[0] for h in flows.conn.execute(
        "SELECT source_node_id FROM stepsync.search_steps(%s, 'restart')", (a.author,))]
    assert set(team_hits) == {"r1", "r2", "r3", "p1"}
    by_command = flows.conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'systemctl')",
                                    (a.outsider,)).fetchall()
    assert by_command == [("r1",)]
    by_group = flows.conn.execute("SELECT source_node_id FROM stepsync.search_steps(%s, 'networking')",
                                  (a.outsider,)).fetchall()
    assert sorted(by_group) == [("r1",), ("r2",), ("r3",)]
    filtered = flows.conn.execute(
        "SELECT source_node_id FROM stepsync.search_steps(%s, 'restart', p_group_label => 'Networking',"
        " p_source_tree_id => %s, p_step_type => 'action', p_limit => 2)", (a.author, restart)).fetchall()
    assert filtered == [("r1",), ("r2",)]
    assert flows.conn.execute("SELECT count(*) FROM stepsync.search_steps(%s, 'restart', p_step_type => 'solution')",
                              (a.author,)).fetchone() == (0,)
    flows.update(restart, is_active=False)
    assert [h[0] for h in flows.conn.execute(
        "SELECT source_node_id FROM stepsync.search_steps(%s, 'restart')", (a.author,))] == ["p1"]


def test_search_uses_the_index(db, flows):
    for i in range(300):
        db.conn.execute("INSERT INTO step_library (title, step_type, content, visibility)"
                        " VALUES (%s, 'action', %s, 'public')", (f"Step {i}", Jsonb({"instructions": f"do {i}"})))
    db.conn.execute("ANALYZE step_library")
    with db.connect(autocommit=False) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT * FROM step_library s WHERE s.is_active AND"
            " s.search_vector @@ websearch_to_tsquery('english', 'restart')"))
    assert "step_library_search_vector_idx" in plan


def test_a_step_with_a_huge_text_publishes_and_stays_searchable(db, flows):
    words = " ".join(f"w{i:07d}x" for i in range(120_000))  # about 1.3 MB: more than a tsvector may hold
    tree = flows.create({"steps": [step("big", "Huge step", description="needle " + words,
                                        commands=["cmd " + words])]}, is_public=True)
    flows.publish(tree)
    assert [(r["source_node_id"], len(r["content"]["instructions"])) for r in flows.library(tree)] == [
        ("big", len("needle " + words))]
    hits = db.rows("SELECT source_node_id FROM stepsync.search_steps(%s, 'needle')", (flows.actors.outsider,))
    assert hits == [("big",)]
