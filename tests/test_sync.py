"""The sync (docs/contract.md §2, §3, §5): what a publish writes, keeps, retires and revives."""

from __future__ import annotations

import psycopg
import pytest

from flows import Flows, cmd, content, header, step


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


PROCEDURE = {
    "steps": [
        step("s-intro", "Read the runbook"),
        header("Prepare"),
        step("s-check", "Check replication", description="Run the query on the primary.",
             expected_outcome="One row per replica.", commands="SELECT * FROM pg_stat_replication;"),
        step("s-backup", "Confirm the backup", description="   ", expected_outcome=" \t\r\n",
             commands=[
                 "pgbackrest info",
                 {"code": "ls /backups", "language": "bash", "label": "List"},
                 {"code": "du -sh /backups", "language": "  "},
                 {"code": "df -h", "label": None, "language": None},
                 "   ",
             ],
             library_visibility="public"),
        {"id": "note-1", "type": "note", "text": "anything"},
        header("  "),
        step("s-blank-header", "Step under a blank header", commands=None, library_visibility=None),
        header("Promote"),
        step("s-promote", "Promote", description=None, commands=[], library_visibility="team"),
        {"id": "end", "type": "procedure_end"},
    ]
}


def test_procedural_publish_writes_exact_entries(flows):
    tree = flows.create(PROCEDURE)
    assert flows.library(tree) == []
    flows.publish(tree)
    rows = flows.library(tree)
    a = flows.actors
    assert [(r["source_node_id"], r["title"], r["step_type"], r["visibility"], r["created_by"], r["account_id"],
             r["is_flow_synced"], r["is_active"], r["usage_count"], r["rating"], r["rating_count"],
             r["forked_from_id"]) for r in rows] == [
        ("s-backup", "Confirm the backup", "action", "public", a.author, a.account, True, True, 0, None, 0, None),
        ("s-blank-header", "Step under a blank header", "action", "team", a.author, a.account,
         True, True, 0, None, 0, None),
        ("s-check", "Check replication", "action", "team", a.author, a.account, True, True, 0, None, 0, None),
        ("s-intro", "Read the runbook", "action", "team", a.author, a.account, True, True, 0, None, 0, None),
        ("s-promote", "Promote", "action", "team", a.author, a.account, True, True, 0, None, 0, None),
    ]
    by_node = {r["source_node_id"]: r["content"] for r in rows}
    assert by_node == {
        "s-intro": content("Read the runbook"),
        "s-check": content("Run the query on the primary.", "One row per replica.",
                           [cmd("SELECT * FROM pg_stat_replication;")], "Prepare"),
        "s-backup": content("Confirm the backup", None, [
            cmd("pgbackrest info"), cmd("ls /backups", "List", "bash"), cmd("du -sh /backups"), cmd("df -h"),
        ], "Prepare"),
        "s-blank-header": content("Step under a blank header", None, [], None),
        "s-promote": content("Promote", None, [], "Promote"),
    }
    for r in rows:
        assert list(r["content"]) == sorted(r["content"], key=lambda k: (len(k), k))  # jsonb's own key order
        assert set(r["content"]) == {"instructions", "help_text", "commands", "group_label"}
    synced_at = {r["last_synced_at"] for r in rows}
    assert len(synced_at) == 1 and None not in synced_at


def test_maintenance_flows_sync_like_procedures(flows):
    tree = flows.create({"steps": [header("Quarterly"), step("m1", "Replace filters", library_visibility="public")]},
                        tree_type="maintenance", is_public=False)
    flows.publish(tree)
    assert flows.entries(tree) == {
        "m1": ("Replace filters", "action", content("Replace filters", group_label="Quarterly"), "public", True)}


def test_flow_visibility_public_and_team(flows):
    public = flows.create({"steps": [step("a", "A")]}, is_public=True, name="P")
    team_no_account = flows.create({"steps": [step("a", "A")]}, is_public=False, account=None, name="T")
    flows.publish(public)
    flows.publish(team_no_account)
    assert [r["visibility"] for r in flows.library(public)] == ["public"]
    assert [(r["visibility"], r["account_id"]) for r in flows.library(team_no_account)] == [("team", None)]


@pytest.mark.parametrize("structure", [{}, {"steps": None}, {"steps": []}, {"steps": [header("Only headers")]}])
def test_missing_or_empty_steps_sync_nothing(flows, structure):
    tree = flows.create(structure)
    flows.publish(tree)
    assert flows.library(tree) == []
    assert flows.conn.execute("SELECT status FROM trees WHERE id = %s", (tree,)).fetchone() == ("published",)


TROUBLE = {
    "id": "q-root", "type": "question", "title": "Does it power on?",
    "library_visibility": "public",
    "children": [
        {"id": "a-plug", "type": "action", "title": "Plug it in", "description": "Use the wall socket.",
         "expected_outcome": "It should not be ignored", "library_visibility": "public",
         "commands": [{"code": "check-power", "language": "bash"}],
         "children": [{"id": "s-fuse", "type": "solution", "title": "Replace the fuse"}]},
        {"id": "q-2", "type": "question", "title": "Lights on?",
         "yes": {"id": "s-lamp", "type": "solution", "title": "Replace the lamp", "commands": "order lamp"},
         "no": [[{"id": "a-deep", "type": "action", "title": "Deep in nested arrays"}]]},
    ],
    "meta": {"owner": {"id": "x-solution", "type": "Solution", "title": 42}},
    "extra": {"type": "action", "id": "a-meta", "title": "Found under any key"},
}


def test_troubleshooting_publish_walks_every_object(flows):
    tree = flows.create(TROUBLE, tree_type="troubleshooting", is_public=False)
    flows.publish(tree)
    assert flows.entries(tree) == {
        "a-plug": ("Plug it in", "action", content("Use the wall socket.", "It should not be ignored",
                                                  [cmd("check-power", command_type="bash")]), "team", True),
        "s-fuse": ("Replace the fuse", "solution", content("Replace the fuse"), "team", True),
        "s-lamp": ("Replace the lamp", "solution", content("Replace the lamp", commands=[cmd("order lamp")]),
                   "team", True),
        "a-deep": ("Deep in nested arrays", "action", content("Deep in nested arrays"), "team", True),
        "a-meta": ("Found under any key", "action", content("Found under any key"), "team", True),
    }


def test_preview_is_in_walk_order_and_equals_what_publish_writes(flows):
    tree = flows.create(TROUBLE, tree_type="troubleshooting")
    preview = flows.conn.execute("SELECT * FROM stepsync.preview(%s)", (tree,)).fetchall()
    # depth first; members in jsonb key order (shorter keys first: "id", "no", "yes", "type", "extra", "children");
    assert [row[0] for row in preview] == ["a-meta", "a-plug", "s-fuse", "a-deep", "s-lamp"]
    assert flows.library() == []  # preview writes nothing
    flows.publish(tree)
    written = [(r["source_node_id"], r["title"], r["step_type"], r["content"], r["visibility"])
               for r in flows.library(tree)]
    assert sorted(preview, key=lambda row: row[0]) == sorted(written, key=lambda row: row[0])


def test_preview_of_a_procedure_is_in_array_order(flows):
    tree = flows.create(PROCEDURE)
    ids = [r[0] for r in flows.conn.execute("SELECT source_node_id FROM stepsync.preview(%s)", (tree,))]
    assert ids == ["s-intro", "s-check", "s-backup", "s-blank-header", "s-promote"]


def test_preview_of_an_unknown_flow_is_p0002(flows):
    with pytest.raises(psycopg.Error) as info:
        flows.conn.execute("SELECT * FROM stepsync.preview(gen_random_uuid())")
    assert info.value.sqlstate == "P0002"


def test_insert_as_published_syncs_and_draft_insert_does_not(flows):
    published = flows.create({"steps": [step("a", "A")]}, status="published", name="P")
    draft = flows.create({"steps": [step("a", "A")]}, status="draft", name="D")
    inactive = flows.create({"steps": [step("a", "A")]}, status="published", is_active=False, name="I")
    assert list(flows.entries(published)) == ["a"]
    assert flows.library(draft) == [] and flows.library(inactive) == []


def test_republish_rewrites_only_the_changed_entry_and_keeps_counts(flows):
    steps = [step(f"s{i:02}", f"Step {i}") for i in range(10)]
    tree = flows.create({"steps": steps})
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 5, rating = 4.5, rating_count = 2"
                       " WHERE source_node_id = 's03'")
    before = {r["source_node_id"]: r for r in flows.library(tree)}

    steps[3] = step("s03", "Step 3, reworded", description="Now with a description")
    flows.update(tree, tree_structure={"steps": steps})
    after = {r["source_node_id"]: r for r in flows.library(tree)}

    changed = [n for n in after if after[n]["xmin"] != before[n]["xmin"]]
    assert changed == ["s03"]
    for node in after:
        if node != "s03":
            assert after[node] == before[node]
    row, old = after["s03"], before["s03"]
    assert (row["title"], row["content"]) == ("Step 3, reworded", content("Now with a description"))
    for kept in ("id", "usage_count", "rating", "rating_count", "created_by", "created_at"):
        assert row[kept] == old[kept]
    assert str(row["rating"]) == "4.50" and row["usage_count"] == 5
    assert row["last_synced_at"] > old["last_synced_at"]
    assert row["updated_at"] > old["updated_at"]


def test_removed_node_is_retired_and_revived_with_counts_intact(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 9 WHERE source_node_id = 'b'")
    before = {r["source_node_id"]: r for r in flows.library(tree)}

    flows.update(tree, tree_structure={"steps": [step("a", "A")]})
    retired = {r["source_node_id"]: r for r in flows.library(tree)}
    assert retired["a"] == before["a"]
    assert retired["b"]["is_active"] is False
    for kept in ("id", "title", "content", "usage_count", "visibility", "last_synced_at", "source_tree_id"):
        assert retired["b"][kept] == before["b"][kept]
    assert retired["b"]["updated_at"] > before["b"]["updated_at"]

    flows.update(tree, tree_structure={"steps": [step("a", "A"), step("b", "B")]})
    revived = {r["source_node_id"]: r for r in flows.library(tree)}
    assert revived["b"]["is_active"] is True
    assert (revived["b"]["id"], revived["b"]["usage_count"]) == (before["b"]["id"], 9)
    assert revived["b"]["last_synced_at"] > before["b"]["last_synced_at"]
    assert revived["a"] == before["a"]


def test_node_that_stops_syncing_is_retired(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    flows.update(tree, tree_structure={"steps": [step("a", "A"), header("B", node_id="b")]})
    assert {n: e[4] for n, e in flows.entries(tree).items()} == {"a": True, "b": False}


@pytest.mark.parametrize("change", [{"is_active": False}, {"status": "archived"}])
def test_deactivate_or_archive_retires_all_and_listing_again_revives(flows, change):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    flows.conn.execute("UPDATE step_library SET usage_count = 3")
    before = {r["source_node_id"]: r for r in flows.library(tree)}
    flows.update(tree, **change)
    assert [(r["source_node_id"], r["is_active"], r["usage_count"]) for r in flows.library(tree)] == [
        ("a", False, 3), ("b", False, 3)]
    flows.update(tree, status="published", is_active=True)
    after = flows.library(tree)
    assert [(r["id"], r["is_active"], r["usage_count"]) for r in after] == [
        (before["a"]["id"], True, 3), (before["b"]["id"], True, 3)]


def test_archiving_or_deactivating_a_draft_retires_its_last_published_entries(flows):
    tree = flows.create({"steps": [step("a", "A")]})
    flows.publish(tree)
    flows.update(tree, status="draft")
    assert [r["is_active"] for r in flows.library(tree)] == [True]
    flows.update(tree, status="archived")
    assert [r["is_active"] for r in flows.library(tree)] == [False]

    other = flows.create({"steps": [step("a", "A")]}, name="other")
    flows.publish(other)
    flows.update(other, status="draft")
    flows.update(other, is_active=False)
    assert [r["is_active"] for r in flows.library(other)] == [False]


def test_back_to_draft_keeps_the_library_until_the_next_publish(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    before = flows.library(tree)
    flows.update(tree, status="draft")
    flows.update(tree, tree_structure={"steps": [step("a", "A edited in draft")]})
    assert flows.library(tree) == before
    flows.publish(tree)
    assert {n: (e[0], e[4]) for n, e in flows.entries(tree).items()} == {
        "a": ("A edited in draft", True), "b": ("B", False)}


def test_delete_retires_entries_then_nulls_their_source(flows):
    tree = flows.create({"steps": [step("a", "A")]})
    flows.publish(tree)
    [before] = flows.library(tree)
    flows.conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    [after] = flows.library(where=f"id = '{before['id']}'")
    assert (after["is_active"], after["source_tree_id"], after["source_node_id"], after["is_flow_synced"]) == (
        False, None, "a", True)
    for kept in ("title", "content", "usage_count", "created_by", "last_synced_at"):
        assert after[kept] == before[kept]


def test_multi_row_update_syncs_every_row(flows):
    trees = [flows.create({"steps": [step("a", f"A{i}"), step("b", f"B{i}")]}, name=f"F{i}") for i in range(5)]
    flows.conn.execute("UPDATE trees SET status = 'published' WHERE id = ANY(%s)", (trees,))
    for i, tree in enumerate(trees):
        assert {n: e[0] for n, e in flows.entries(tree).items()} == {"a": f"A{i}", "b": f"B{i}"}
    flows.conn.execute("UPDATE trees SET is_active = false WHERE id = ANY(%s)", (trees[:2],))
    assert [all(not e[4] for e in flows.entries(t).values()) for t in trees] == [True, True, False, False, False]


def test_two_flows_may_share_node_ids(flows):
    one = flows.create({"steps": [step("a", "One")]}, name="one")
    two = flows.create({"steps": [step("a", "Two")]}, name="two")
    flows.conn.execute("UPDATE trees SET status = 'published' WHERE id IN (%s, %s)", (one, two))
    assert flows.entries(one)["a"][0] == "One" and flows.entries(two)["a"][0] == "Two"


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"is_public": True}, ("public", "account")),
        ({"account_id": None}, ("team", None)),
        ({"tree_type": "maintenance"}, ("team", "account")),
    ],
)
def test_flow_metadata_the_library_depends_on_resyncs(flows, change, expected):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B", library_visibility="team")]})
    flows.publish(tree)
    flows.update(tree, **change)
    rows = flows.library(tree)
    account = flows.actors.account if expected[1] == "account" else None
    assert [(r["source_node_id"], r["visibility"], r["account_id"]) for r in rows] == [
        ("a", expected[0], account), ("b", "team", account)]


def test_tree_type_change_to_troubleshooting_retires_procedure_steps(flows):
    tree = flows.create({"steps": [step("a", "A")]})
    flows.publish(tree)
    flows.update(tree, tree_type="troubleshooting")
    assert {n: e[4] for n, e in flows.entries(tree).items()} == {"a": False}


def calls(conn, function: str) -> int:
    row = conn.execute(
        "SELECT calls FROM pg_stat_xact_user_functions WHERE schemaname = 'stepsync' AND funcname = %s",
        (function,)).fetchone()
    return 0 if row is None else row[0]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE trees SET name = 'Renamed' WHERE id = %(id)s",
        "UPDATE trees SET description = 'New words' WHERE id = %(id)s",
        "UPDATE trees SET status = 'published' WHERE id = %(id)s",
        "UPDATE trees SET tree_structure = tree_structure WHERE id = %(id)s",
        "UPDATE trees SET tree_structure = %(same)s::jsonb WHERE id = %(id)s",
        "UPDATE trees SET name = name, description = description, tree_type = tree_type,"
        " tree_structure = tree_structure, status = status, is_active = is_active, is_public = is_public,"
        " account_id = account_id, author_id = author_id WHERE id = %(id)s",
    ],
    ids=["rename", "description", "republish-status", "same-structure", "same-structure-literal", "orm-rewrite"],
)
def test_writes_that_change_nothing_relevant_do_no_library_work(db, flows, sql):
    import json

    structure = {"steps": [step("a", "A"), step("b", "B")]}
    tree = flows.create(structure)
    flows.publish(tree)
    before = flows.library(tree)
    with db.connect(autocommit=False) as conn:
        conn.execute("SET track_functions = 'all'")
        conn.execute(sql, {"id": tree, "same": json.dumps(structure)})
        assert (calls(conn, "tg_trees__sync"), calls(conn, "_sync"), calls(conn, "_nodes")) == (0, 0, 0)
        conn.commit()
    assert flows.library(tree) == before


def test_a_publish_is_one_call_of_the_sync(db, flows):
    tree = flows.create({"steps": [step(f"s{i}", f"S{i}") for i in range(50)]})
    with db.connect(autocommit=False) as conn:
        conn.execute("SET track_functions = 'all'")
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
        assert (calls(conn, "tg_trees__sync"), calls(conn, "_sync"), calls(conn, "_nodes")) == (1, 1, 1)
        conn.commit()


def test_hand_made_rows_and_forks_are_never_touched(flows):
    tree = flows.create({"steps": [step("a", "A")]})
    flows.publish(tree)
    [synced] = flows.library(tree)
    hand = flows.conn.execute(
        "INSERT INTO step_library (title, step_type, content, visibility) VALUES ('Mine', 'action', '{}', 'private')"
        " RETURNING id").fetchone()[0]
    fork = flows.conn.execute(
        "INSERT INTO step_library (title, step_type, content, forked_from_id) VALUES ('A', 'action', %s, %s)"
        " RETURNING id", (psycopg.types.json.Jsonb(synced["content"]), synced["id"])).fetchone()[0]
    others = flows.library(where=f"id IN ('{hand}', '{fork}')")
    flows.update(tree, tree_structure={"steps": [step("b", "B")]})
    flows.update(tree, is_active=False)
    flows.update(tree, is_active=True)
    flows.conn.execute("DELETE FROM trees WHERE id = %s", (tree,))
    assert flows.library(where=f"id IN ('{hand}', '{fork}')") == others


def test_sync_tree_repairs_and_reports_rows_written(db, flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.conn.execute("ALTER TABLE trees DISABLE TRIGGER t31_sync_on_update")
    flows.publish(tree)
    flows.conn.execute("ALTER TABLE trees ENABLE TRIGGER t31_sync_on_update")
    assert flows.library(tree) == []
    assert db.value("SELECT stepsync.sync_tree(%s)", (tree,)) == 2
    assert set(flows.entries(tree)) == {"a", "b"}
    assert db.value("SELECT stepsync.sync_tree(%s)", (tree,)) == 0

    flows.conn.execute("ALTER TABLE trees DISABLE TRIGGER t31_sync_on_update")
    flows.update(tree, is_active=False)
    flows.conn.execute("ALTER TABLE trees ENABLE TRIGGER t31_sync_on_update")
    assert db.value("SELECT stepsync.sync_tree(%s)", (tree,)) == 2
    assert [e[4] for e in flows.entries(tree).values()] == [False, False]
    assert db.value("SELECT stepsync.sync_tree(%s)", (tree,)) == 0


def test_sync_tree_of_a_draft_changes_nothing(db, flows):
    tree = flows.create({"steps": [step("a", "A")]})
    assert db.value("SELECT stepsync.sync_tree(%s)", (tree,)) == 0
    assert flows.library() == []


def test_sync_tree_of_an_unknown_flow_is_p0002(db):
    with pytest.raises(psycopg.Error) as info:
        db.conn.execute("SELECT stepsync.sync_tree('00000000-0000-0000-0000-000000000000')")
    assert info.value.sqlstate == "P0002"
    assert info.value.diag.message_primary == "no flow with id 00000000-0000-0000-0000-000000000000"


def test_the_example_flows_publish(db, flows):
    from stepsync import demo

    ids = demo.load_examples(db.conn)
    db.conn.execute("UPDATE trees SET status = 'published' WHERE id = ANY(%s)", (list(ids.values()),))
    counts = dict(db.rows(
        "SELECT t.name, count(*) FROM step_library s JOIN trees t ON t.id = s.source_tree_id"
        " WHERE s.is_active GROUP BY t.name"))
    assert sorted(counts.values()) == [25, 29, 30]
    for tree in ids.values():
        preview = db.rows("SELECT * FROM stepsync.preview(%s) ORDER BY source_node_id", (tree,))
        written = db.rows(
            "SELECT source_node_id, title, step_type, content, visibility FROM step_library"
            " WHERE source_tree_id = %s ORDER BY source_node_id", (tree,))
        assert preview == written
