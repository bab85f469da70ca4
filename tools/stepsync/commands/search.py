"""`stepsync search QUERY --as USER_ID [...]`: the library as a user sees it (stepsync.search_steps)."""

from __future__ import annotations

from typing import Any

import psycopg

from stepsync import database
from stepsync.output import emit_json, print_table

SEARCH_KEYS = ("id", "title", "step_type", "visibility", "rank", "complete", "usage_count", "rating",
               "rating_count", "source_tree_id", "source_tree_name", "source_node_id", "is_flow_synced",
               "forked_from_id", "content")


def run(url: str, query: str, user_id: Any, step_type: str | None, section: str | None, flow: Any, limit: int,
        as_json: bool) -> None:
    """Print stepsync.search_steps' results, best match first, as a table or JSON."""
    with database.connect(url, autocommit=True) as conn:
        search(conn, query, user_id, step_type, section, flow, limit, as_json)


def search(conn: psycopg.Connection[Any], query: str, user_id: Any, step_type: str | None, section: str | None,
           flow: Any, limit: int, as_json: bool) -> None:
    """The command on CONN (autocommit)."""
    cur = conn.execute("SELECT * FROM stepsync.search_steps(%s::uuid, %s, %s, %s, %s::uuid, %s)",
                       (user_id, query, step_type, section, flow, limit))
    names = [c.name for c in cur.description or ()]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    if as_json:
        emit_json([{key: row.get(key) for key in SEARCH_KEYS} for row in rows])
        return
    partial = any(row.get("complete") is False for row in rows)
    caption = f"{len(rows)} results" + (" (ranked among a bounded set of candidates: refine the query"
                                        " for an exact order)" if partial else "")
    print_table(("title", "type", "visibility", "source flow", "uses", "rank"),
                [(row["title"], row["step_type"], row["visibility"], row.get("source_tree_name") or "",
                  row.get("usage_count"), f"{row['rank']:.4f}") for row in rows],
                caption=caption, justify={"uses": "right", "rank": "right"})
