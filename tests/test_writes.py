"""Writes that pay only for what they change (issue 11): updated_at without reading the document, the
split sync triggers (one sync a statement at most), and the incremental republish that re-shapes only the
steps that changed, with its fallback to a full sync when the library is not what the old structure gave.

Until the lead's new revision freezes db/functions/, the autouse fixture applies the files this work
changed on top of the migrated database (dropping the signatures they replace)."""

from __future__ import annotations

import psycopg
import pytest

from flows import Flows, content, header, step
from stepsync.paths import object_file

CHANGED = (
    "DROP FUNCTION IF EXISTS stepsync._sync(uuid, text, jsonb, boolean, uuid, uuid)",
    "DROP FUNCTION IF EXISTS stepsync._nodes(uuid, text, jsonb, boolean, boolean, boolean)",
    "tg_set_updated_at.sql", "_walk_troubleshooting.sql", "_nodes.sql", "_sync.sql", "_retire.sql",
    "tg_trees__sync.sql", "tg_trees__retire_on_delete.sql", "sync_tree.sql", "preview.sql",
    "trees__t10_set_updated_at.sql", "trees__t11_set_updated_at_structure.sql",
    "step_library__t10_set_updated_at.sql", "trees__t20_retire_on_delete.sql", "trees__t30_sync_on_insert.sql",
    "trees__t31_sync_on_update.sql", "trees__t32_sync_on_structure.sql", "trees__t33_sync_on_settings.sql",
)


@pytest.fixture(autouse=True)
def current_functions(db):
    with db.connect(autocommit=False) as conn:
        for item in CHANGED:
            conn.execute(item if item.startswith("DROP ") else object_file(item).read_text(encoding="utf-8"))
        conn.commit()


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


def procedure(n: int, *, tag: str = "", headers_every: int = 5) -> dict:
    steps = []
    for i in range(n):
        if i % headers_every == 0:
            steps.append(header(f"Part {i // headers_every}", node_id=f"h{i // headers_every}"))
        steps.append(step(f"s{i}", f"Step {i}{tag}", description=f"Do {i}", commands=["ls", {"code": f"run {i}"}]))
    return {"steps": steps}


def backdate(db, table: str, where: str, params) -> None:
    """Set updated_at to 2000-01-01 behind the triggers' back (the trigger would stamp the change itself)."""
    with db.connect(autocommit=False) as conn:
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(f"UPDATE {table} SET updated_at = '2000-01-01' WHERE {where}", params)
        conn.commit()


def tree_row(db, tree) -> tuple:
    return db.rows("SELECT xmin::text, updated_at FROM trees WHERE id = %s", (tree,))[0]


def versions(db, tree) -> dict[str, str]:
    return dict(db.rows("SELECT source_node_id, xmin::text FROM step_library WHERE source_tree_id = %s", (tree,)))


def calls(conn, function: str) -> int:
    """How often FUNCTION ran in the current transaction (track_functions = 'all')."""
    return conn.execute(
        "SELECT COALESCE(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE schemaname = 'stepsync'"
        " AND funcname = %s", (function,)).fetchone()[0]


def sync_calls(db, sql: str, params=()) -> int:
    """Run SQL in its own transaction and return how many times stepsync._sync ran."""
    with db.connect(autocommit=False) as conn:
        conn.execute("SET track_functions = 'all'")
        conn.execute(sql, params)
        n = calls(conn, "_sync")
        conn.commit()
    return n


def oracle(db) -> list:
    return db.rows("SELECT * FROM stepsync.check_library()")


# -- updated_at (docs/contract.md §5.9) --------------------------------------------------------------------------------


def test_updated_at_moves_with_every_change_and_only_then(db, flows):
    tree = flows.create(procedure(3))
    backdate(db, "trees", "id = %s", (tree,))
    stamp = tree_row(db, tree)[1]
    assert stamp.year == 2000

    db.conn.execute("UPDATE trees SET status = status, name = name WHERE id = %s", (tree,))
    assert tree_row(db, tree)[1] == stamp, "re-setting values is no change"
    db.conn.execute("UPDATE trees SET tree_structure = tree_structure WHERE id = %s", (tree,))
    assert tree_row(db, tree)[1] == stamp, "the same document is no change"
    flows.update(tree, tree_structure=procedure(3), name="Flow", status="draft")
    assert tree_row(db, tree)[1] == stamp, "the same document, sent again with every column, is no change"

    flows.update(tree, tree_structure=procedure(3, tag="!"))
    assert tree_row(db, tree)[1] > stamp, "a new document alone is a change"
    backdate(db, "trees", "id = %s", (tree,))
    flows.update(tree, name="Renamed")
    assert tree_row(db, tree)[1] > stamp, "a rename is a change"
    backdate(db, "trees", "id = %s", (tree,))
    flows.update(tree, name="Renamed again", tree_structure=procedure(3, tag="!"))
    assert tree_row(db, tree)[1] > stamp, "a rename with the same document is a change"


def test_updated_at_of_a_second_change_in_one_transaction(db, flows):
    tree = flows.create(procedure(2))
    with db.connect(autocommit=False) as conn:
        conn.execute("UPDATE trees SET name = 'first' WHERE id = %s", (tree,))
        first = conn.execute("SELECT updated_at, now() FROM trees WHERE id = %s", (tree,)).fetchone()
        assert first[0] == first[1]
        conn.execute("UPDATE trees SET tree_structure = %s WHERE id = %s",
                     (psycopg.types.json.Jsonb(procedure(2, tag="?")), tree))
        assert conn.execute("SELECT updated_at FROM trees WHERE id = %s", (tree,)).fetchone()[0] == first[1]
        conn.commit()


def test_re_sending_an_equal_document_keeps_the_stored_one(db, flows):
    """jsonb equality decides (numbers by value): the row is unchanged, so it keeps the stored document, and
    writes no new TOAST copy of it."""
    tree = db.value("INSERT INTO trees (name, tree_type, tree_structure, author_id) VALUES"
                    " ('F', 'procedural', '{\"steps\": [], \"version\": 1.0}', %s) RETURNING id",
                    (flows.actors.author,))
    backdate(db, "trees", "id = %s", (tree,))
    db.conn.execute("UPDATE trees SET tree_structure = '{\"version\": 1.00, \"steps\": []}' WHERE id = %s", (tree,))
    assert db.value("SELECT tree_structure::text FROM trees WHERE id = %s", (tree,)) == (
        '{"steps": [], "version": 1.0}')
    assert tree_row(db, tree)[1].year == 2000
    db.conn.execute("UPDATE trees SET tree_structure = '{\"version\": 2, \"steps\": []}' WHERE id = %s", (tree,))
    assert db.value("SELECT tree_structure::text FROM trees WHERE id = %s", (tree,)) == '{"steps": [], "version": 2}'
    assert tree_row(db, tree)[1].year > 2000


def test_the_updated_at_function_refuses_an_unknown_argument(db, flows):
    tree = flows.create(procedure(1))
    db.conn.execute("CREATE TRIGGER t12_bad BEFORE UPDATE ON trees FOR EACH ROW"
                    " EXECUTE FUNCTION stepsync.tg_set_updated_at('everything')")
    with pytest.raises(psycopg.Error) as info:
        flows.update(tree, name="x")
    assert info.value.sqlstate == "39P01"
    assert "unknown argument everything" in info.value.diag.message_primary


def test_step_library_updated_at_still_compares_the_whole_row(db, flows):
    tree = flows.create(procedure(1), status="published")
    backdate(db, "step_library", "source_tree_id = %s", (tree,))
    db.conn.execute("UPDATE step_library SET usage_count = usage_count WHERE source_tree_id = %s", (tree,))
    assert db.value("SELECT updated_at FROM step_library WHERE source_tree_id = %s", (tree,)).year == 2000
    db.conn.execute("UPDATE step_library SET usage_count = usage_count + 1 WHERE source_tree_id = %s", (tree,))
    assert db.value("SELECT updated_at FROM step_library WHERE source_tree_id = %s", (tree,)).year > 2000


# -- no-op writes do no library work (docs/contract.md §5.8) -----------------------------------------------------------


def test_no_op_writes_never_call_the_sync(db, flows):
    tree = flows.create(procedure(4), status="published")
    before = versions(db, tree)
    doc = psycopg.types.json.Jsonb(procedure(4))
    assert sync_calls(db, "UPDATE trees SET status = 'published' WHERE id = %s", (tree,)) == 0
    assert sync_calls(db, "UPDATE trees SET name = 'x', description = 'y' WHERE id = %s", (tree,)) == 0
    assert sync_calls(db, "UPDATE trees SET tree_structure = %s WHERE id = %s", (doc, tree)) == 0
    assert sync_calls(
        db, "UPDATE trees SET name = name, description = description, tree_type = tree_type, tree_structure = %s,"
            " status = status, is_active = is_active, is_public = is_public, account_id = account_id,"
            " author_id = author_id, created_at = created_at, updated_at = updated_at WHERE id = %s",
        (doc, tree)) == 0
    assert versions(db, tree) == before


def test_a_status_re_set_never_reads_the_document(db, flows):
    """Neither updated_at nor the sync triggers compare tree_structure unless the statement sets it: with a
    document that jsonb cannot compare quickly, the re-set still only calls the updated_at function once."""
    tree = flows.create(procedure(2), status="published")
    with db.connect(autocommit=False) as conn:
        conn.execute("SET track_functions = 'all'")
        conn.execute("UPDATE trees SET status = 'published' WHERE id = %s", (tree,))
        assert calls(conn, "tg_set_updated_at") == 1   # t10 only: t11 fires only when tree_structure is set
        assert calls(conn, "tg_trees__sync") == 0
        conn.execute("UPDATE trees SET tree_structure = tree_structure WHERE id = %s", (tree,))
        assert calls(conn, "tg_set_updated_at") == 3   # t10 and t11
        assert calls(conn, "tg_trees__sync") == 0
        conn.rollback()


@pytest.mark.parametrize("sql", [
    "UPDATE trees SET status = 'published', tree_structure = %(doc)s WHERE id = %(tree)s",
    "UPDATE trees SET tree_structure = %(doc)s, is_public = true WHERE id = %(tree)s",
    "UPDATE trees SET tree_structure = %(doc)s, tree_type = 'maintenance' WHERE id = %(tree)s",
    "UPDATE trees SET tree_structure = %(doc)s, account_id = NULL WHERE id = %(tree)s",
    "UPDATE trees SET tree_structure = %(doc)s, status = 'published', is_active = true, is_public = false"
    " WHERE id = %(tree)s",
])
def test_one_statement_syncs_a_flow_once(db, flows, sql):
    """t31_sync_on_update and t32_sync_on_structure exclude each other: never two syncs for one row."""
    tree = flows.create(procedure(3))
    flows.publish(tree)
    doc = psycopg.types.json.Jsonb(procedure(3, tag=" v2"))
    assert sync_calls(db, sql, {"doc": doc, "tree": tree}) == 1
    assert oracle(db) == []


def test_a_draft_published_with_new_settings_and_structure_syncs_once(db, flows):
    tree = flows.create(procedure(2))
    assert sync_calls(db, "UPDATE trees SET status = 'published', is_public = true, tree_type = 'maintenance',"
                          " tree_structure = %s WHERE id = %s", (psycopg.types.json.Jsonb(procedure(3)), tree)) == 1
    assert {e[3] for e in flows.entries(tree).values()} == {"public"}
    assert oracle(db) == []


def test_an_unlisted_flow_s_settings_do_no_library_work(db, flows):
    tree = flows.create(procedure(2), status="published")
    flows.update(tree, status="draft")
    with db.connect(autocommit=False) as conn:
        conn.execute("SET track_functions = 'all'")
        conn.execute("UPDATE trees SET is_public = true, account_id = NULL WHERE id = %s", (tree,))
        assert calls(conn, "tg_trees__sync") == 0
        conn.rollback()


def test_a_draft_published_with_a_new_structure_syncs_once(db, flows):
    tree = flows.create(procedure(2))
    assert sync_calls(db, "UPDATE trees SET status = 'published', tree_structure = %s WHERE id = %s",
                      (psycopg.types.json.Jsonb(procedure(3)), tree)) == 1
    assert set(flows.entries(tree)) == {"s0", "s1", "s2"}


def test_a_structure_edit_of_an_unlisted_flow_does_nothing(db, flows):
    tree = flows.create(procedure(2), status="published")
    flows.update(tree, status="draft")
    before = versions(db, tree)
    assert sync_calls(db, "UPDATE trees SET tree_structure = %s WHERE id = %s",
                      (psycopg.types.json.Jsonb(procedure(5)), tree)) == 0
    assert versions(db, tree) == before


def test_deactivating_with_a_new_structure_retires(db, flows):
    tree = flows.create(procedure(2), status="published")
    flows.update(tree, tree_structure=procedure(3), is_active=False)
    assert [e[4] for e in flows.entries(tree).values()] == [False, False]


# -- the incremental republish -----------------------------------------------------------------------------


def test_a_republish_rewrites_only_the_edited_steps(db, flows):
    tree = flows.create(procedure(20), status="published")
    before = versions(db, tree)
    edited = procedure(20)
    edited["steps"][3]["title"] = "Edited"        # s2
    edited["steps"][8]["commands"] = "echo only"  # s6
    flows.update(tree, tree_structure=edited)
    after = versions(db, tree)
    assert {k for k in after if after[k] != before[k]} == {"s2", "s6"}
    assert flows.entries(tree)["s6"][2]["commands"] == [{"label": "", "command": "echo only", "command_type": None}]
    assert oracle(db) == []


def test_the_incremental_extraction_leaves_unchanged_steps_unshaped(db):
    old = procedure(6)
    new = procedure(6)
    new["steps"][2]["title"] = "Edited"   # s1
    rows = db.rows("SELECT source_node_id, content IS NULL FROM stepsync._nodes(gen_random_uuid(), 'procedural',"
                   " %s, false, true, false, %s) ORDER BY ord",
                   (psycopg.types.json.Jsonb(new), psycopg.types.json.Jsonb(old)))
    assert rows == [("s0", True), ("s1", False), ("s2", True), ("s3", True), ("s4", True), ("s5", True)]


def test_a_renamed_section_header_reshapes_the_steps_under_it(db, flows):
    tree = flows.create(procedure(10), status="published")
    before = versions(db, tree)
    edited = procedure(10)
    edited["steps"][6]["title"] = "Part one, renamed"   # header h1, above s5..s9
    flows.update(tree, tree_structure=edited)
    after = versions(db, tree)
    assert {k for k in after if after[k] != before[k]} == {"s5", "s6", "s7", "s8", "s9"}
    assert {e[2]["group_label"] for k, e in flows.entries(tree).items() if k >= "s5"} == {"Part one, renamed"}
    assert oracle(db) == []


def test_steps_inserted_removed_and_moved_are_synced_exactly(db, flows):
    tree = flows.create(procedure(12), status="published")
    edited = procedure(12)
    steps = edited["steps"]
    steps.insert(0, step("new-first", "Inserted at the top"))
    del steps[5]                                   # s3 goes
    steps.append(steps.pop(3))                     # s1 moves to the end, under the last header
    steps.insert(7, header("Inserted header", node_id="hx"))
    flows.update(tree, tree_structure=edited)
    assert oracle(db) == []
    entries = flows.entries(tree)
    assert entries["s3"][4] is False and entries["new-first"][4] is True
    assert entries["s1"][2]["group_label"] == "Part 2"


def test_an_edit_after_a_sync_behind_the_triggers_back_falls_back_to_a_full_sync(db, flows):
    """Published with the sync trigger off (a bulk load), the library holds nothing for the flow: the next
    structure edit finds unchanged steps without entries and syncs the whole flow."""
    tree = flows.create(procedure(6))
    db.conn.execute("ALTER TABLE trees DISABLE TRIGGER t31_sync_on_update")
    flows.publish(tree)
    db.conn.execute("ALTER TABLE trees ENABLE TRIGGER t31_sync_on_update")
    assert flows.entries(tree) == {}
    edited = procedure(6)
    edited["steps"][2]["title"] = "Edited"
    flows.update(tree, tree_structure=edited)
    assert set(flows.entries(tree)) == {f"s{i}" for i in range(6)}
    assert oracle(db) == []


def test_an_entry_that_differs_from_the_old_structure_falls_back_to_a_full_sync(db, flows):
    tree = flows.create(procedure(4), status="published")
    with db.connect(autocommit=False) as conn:   # the owner, writing under the sync's marker: a repair tool would
        conn.execute("SET LOCAL stepsync.sync_writing = 'on'")
        conn.execute("UPDATE step_library SET title = 'tampered' WHERE source_node_id = 's3'")
        conn.commit()
    edited = procedure(4)
    edited["steps"][1]["title"] = "Edited"   # s0
    flows.update(tree, tree_structure=edited)
    assert flows.entries(tree)["s3"][0] == "Step 3"
    assert oracle(db) == []


def test_an_unchanged_bad_step_still_fails_the_republish(db, flows):
    """A listed flow whose structure fails the checks (listed with the triggers off, or skipped by the
    backfill): editing another step must still fail with the unchanged step's problem."""
    bad = procedure(4)
    bad["steps"][3]["description"] = 5   # s2
    tree = flows.create(bad)
    db.conn.execute("ALTER TABLE trees DISABLE TRIGGER t31_sync_on_update")
    flows.publish(tree)
    db.conn.execute("ALTER TABLE trees ENABLE TRIGGER t31_sync_on_update")
    edited = procedure(4)
    edited["steps"][3]["description"] = 5
    edited["steps"][1]["title"] = "Edited"
    with pytest.raises(psycopg.Error) as info:
        flows.update(tree, tree_structure=edited)
    assert info.value.sqlstate == "23514"
    assert info.value.diag.message_primary == (
        f'flow {tree} cannot be published: node "s2" has a "description" that is a JSON number (5), not a string')


def test_a_retired_step_that_comes_back_unchanged_is_revived(db, flows):
    tree = flows.create(procedure(3), status="published")
    without = procedure(3)
    del without["steps"][2]   # s1
    flows.update(tree, tree_structure=without)
    assert flows.entries(tree)["s1"][4] is False
    flows.update(tree, tree_structure=procedure(3))
    assert flows.entries(tree)["s1"][4] is True
    assert oracle(db) == []


def test_the_incremental_republish_of_a_troubleshooting_flow_is_a_full_one(db, flows):
    tree = flows.create({"id": "q", "type": "question", "children": [
        {"id": "a", "type": "action", "title": "A"}, {"id": "b", "type": "solution", "title": "B"}]},
        tree_type="troubleshooting", status="published")
    flows.update(tree, tree_structure={"id": "q", "type": "question", "children": [
        {"id": "a", "type": "action", "title": "A2"}, {"id": "c", "type": "solution", "title": "C"}]})
    assert flows.entries(tree) == {
        "a": ("A2", "action", content("A2"), "team", True),
        "b": ("B", "solution", content("B"), "team", False),
        "c": ("C", "solution", content("C"), "team", True)}


# -- the rule table (docs/contract.md §4, in its order) ----------------------------------------------------------------


def test_a_duplicate_id_is_reported_before_the_later_rules(db, flows):
    """§4.3 comes before §4.4-§4.6: a second node with a taken id is reported as a duplicate even when it
    also has a bad description."""
    tree = flows.create({"steps": [step("a", "A"), step("a", "B", description=7)]})
    with pytest.raises(psycopg.Error) as info:
        flows.publish(tree)
    assert info.value.diag.message_primary == (
        f'flow {tree} cannot be published: node "a" appears more than once in the flow (first at $.steps[0])')
    assert info.value.diag.message_detail == "JSON path: $.steps[1].id"
