"""`stepsync preview TREE_ID [--json]`: the entries a publish of the flow would write now (stepsync.preview)."""

from __future__ import annotations

from typing import Any

import psycopg

from stepsync import database
from stepsync.output import emit_json, print_table


def run(url: str, tree_id: Any, as_json: bool) -> None:
    """Print the entries a publish of TREE_ID would write now, as a table or JSON; nothing is written."""
    with database.connect(url, autocommit=True) as conn:
        preview(conn, tree_id, as_json)


def preview(conn: psycopg.Connection[Any], tree_id: Any, as_json: bool) -> None:
    """The command on CONN (autocommit)."""
    rows = conn.execute("SELECT source_node_id, title, step_type, content, visibility"
                        " FROM stepsync.preview(%s::uuid)", (tree_id,)).fetchall()
    if as_json:
        emit_json([{"source_node_id": node, "title": title, "step_type": step_type, "visibility": visibility,
                    "content": content} for node, title, step_type, content, visibility in rows])
        return
    print_table(("node", "title", "type", "visibility", "section", "commands"),
                [(node, title, step_type, visibility, content.get("group_label") or "", len(content["commands"]))
                 for node, title, step_type, content, visibility in rows],
                caption=f"{len(rows)} entries")
