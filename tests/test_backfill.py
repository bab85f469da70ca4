"""The installing migration backfills listed flows (docs/contract.md §5.6); downgrading removes synced rows (§5.10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from flows import step
from repo import REPO_ROOT
from stepsync import database

PRE_FEATURE = "stepsync_0001"  # the application tables, before the sync


def seed_pre_feature(db) -> dict[str, str]:
    """Flows and a hand-made step as the application had them before the sync existed."""
    author = db.value("INSERT INTO users (email) VALUES ('a@example.com') RETURNING id")

    def tree(name, structure, status="published", is_active=True, tree_type="procedural"):
        return str(db.value(
            "INSERT INTO trees (name, tree_type, tree_structure, status, is_active, author_id)"
            " VALUES (%s, %s, %s::jsonb, %s, %s, %s) RETURNING id",
            (name, tree_type, json.dumps(structure), status, is_active, author)))

    ids = {
        "good": tree("Good flow", {"steps": [step("a", "A"), step("b", "B")]}),
        "bad": tree("Broken flow", {"steps": [step("a", "A"), step("a", "again")]}),
        "draft": tree("Draft flow", {"steps": [step("d", "D")]}, status="draft"),
        "inactive": tree("Inactive flow", {"steps": [step("i", "I")]}, is_active=False),
        "trouble": tree("Trouble", {"id": "q", "type": "question",
                                    "children": [{"id": "s", "type": "solution", "title": "Fix"}]},
                        tree_type="troubleshooting"),
    }
    db.conn.execute("INSERT INTO step_library (title, step_type, content) VALUES ('Hand-made', 'action', '{}')")
    return ids


def synced(db) -> list[tuple]:
    return db.rows("SELECT t.name, s.source_node_id, s.is_active FROM step_library s"
                   " JOIN trees t ON t.id = s.source_tree_id ORDER BY 1, 2")


def test_upgrade_backfills_listed_flows_and_warns_about_broken_ones(empty_db):
    database.migrate(empty_db.url, PRE_FEATURE)
    ids = seed_pre_feature(empty_db)
    env = {**os.environ, "STEPSYNC_DATABASE_URL": empty_db.url}
    result = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    # Twice: the install's backfill (stepsync_0002), then the pass over every flow that stepsync_0004 makes
    # (stepsync.backfill_progress), which writes nothing more.
    assert warnings == 2 * [
        f"WARNING [stepsync.migrate] stepsync backfill skipped flow {ids['bad']} (Broken flow): "
        f'flow {ids["bad"]} cannot be published: node "a" appears more than once in the flow (first at $.steps[0])'
        " (JSON path: $.steps[1].id)"
    ]
    assert "stepsync backfill: 2 flows brought in step (3 library rows written or retired), 1 skipped" in result.stderr
    assert "stepsync backfill: 2 flows brought in step (0 library rows written or retired), 1 skipped" in result.stderr
    assert empty_db.value("SELECT count(*) FROM stepsync.backfill_progress") == 0
    assert synced(empty_db) == [("Good flow", "a", True), ("Good flow", "b", True), ("Trouble", "s", True)]
    assert empty_db.value("SELECT count(*) FROM step_library WHERE NOT is_flow_synced") == 1


def test_downgrade_below_the_sync_deletes_synced_rows_and_upgrade_brings_them_back(empty_db):
    database.migrate(empty_db.url, PRE_FEATURE)
    seed_pre_feature(empty_db)
    database.migrate(empty_db.url)
    synced_row = empty_db.value("SELECT id FROM step_library WHERE source_node_id = 'a'")
    empty_db.conn.execute(
        "INSERT INTO step_library (title, step_type, content, forked_from_id) VALUES ('Fork', 'action', '{}', %s)",
        (synced_row,))
    database.downgrade(empty_db.url, PRE_FEATURE)
    assert empty_db.rows("SELECT title FROM step_library ORDER BY title") == [("Fork",), ("Hand-made",)]
    database.migrate(empty_db.url)
    assert synced(empty_db) == [("Good flow", "a", True), ("Good flow", "b", True), ("Trouble", "s", True)]
    assert empty_db.rows("SELECT title, forked_from_id FROM step_library WHERE NOT is_flow_synced ORDER BY title") == [
        ("Fork", None), ("Hand-made", None)]
