"""The oracle stepsync.check_library(): zero rows when consistent, and it sees every kind of damage."""

from __future__ import annotations

import pytest

from flows import Flows, step


@pytest.fixture
def flows(db) -> Flows:
    return Flows(db.conn)


def oracle(db) -> list[tuple]:
    return [(r[0], r[2]) for r in db.rows("SELECT * FROM stepsync.check_library()")]


def without_sync(db, sql, params=None):
    """Run SQL with the sync triggers off, as a careless restore or a bug might."""
    with db.connect(autocommit=False) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql, params)
        conn.commit()


@pytest.fixture
def published(flows):
    tree = flows.create({"steps": [step("a", "A"), step("b", "B")]})
    flows.publish(tree)
    draft = flows.create({"steps": [step("d", "D")]}, name="draft")
    flows.publish(draft)
    flows.update(draft, status="draft", tree_structure={"steps": [step("d", "D changed while a draft")]})
    return tree


def test_consistent_library_has_no_differences(db, published):
    assert oracle(db) == []


def test_oracle_sees_a_missing_entry(db, published):
    without_sync(db, "UPDATE trees SET tree_structure = %s::jsonb WHERE id = %s",
                 ('{"steps": [{"id": "a", "type": "procedure_step", "title": "A"},'
                  ' {"id": "b", "type": "procedure_step", "title": "B"},'
                  ' {"id": "c", "type": "procedure_step", "title": "C"}]}', published))
    assert oracle(db) == [("missing", "c")]


def test_oracle_sees_a_stale_and_an_unexpected_entry(db, published):
    without_sync(db, "UPDATE trees SET tree_structure = %s::jsonb WHERE id = %s",
                 ('{"steps": [{"id": "a", "type": "procedure_step", "title": "A, renamed"}]}', published))
    assert sorted(oracle(db)) == [("missing", "a"), ("unexpected", "a"), ("unexpected", "b")]


def test_oracle_sees_entries_left_active_by_a_deactivated_flow(db, published):
    without_sync(db, "UPDATE trees SET is_active = false WHERE id = %s", (published,))
    assert sorted(oracle(db)) == [("unexpected", "a"), ("unexpected", "b")]


def test_oracle_sees_a_listed_flow_that_fails_the_checks(db, published):
    without_sync(db, "UPDATE trees SET tree_structure = '{\"steps\": 3}' WHERE id = %s", (published,))
    rows = db.rows("SELECT difference, source_node_id, entry FROM stepsync.check_library() ORDER BY 1, 2")
    assert rows == [
        ("listed flow fails the publish checks", None,
         {"problem": '"steps" is a JSON number (3), not an array', "path": "$.steps"}),
        ("unexpected", "a", rows[1][2]), ("unexpected", "b", rows[2][2]),
    ]


def test_oracle_sees_an_active_orphan(db, published):
    without_sync(db, "DELETE FROM trees WHERE id = %s", (published,))
    assert sorted(oracle(db)) == [("unexpected", "a"), ("unexpected", "b")]
