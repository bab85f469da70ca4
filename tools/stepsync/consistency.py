"""The library against the flows, through the SQL API: the rows `stepsync check` lists and `stepsync doctor`
counts.

stepsync.check_flows() names every flow whose structure would fail the publish checks,
stepsync.check_library() every difference between the library and what the flows say (the oracle);
a DBA can call both too.
"""

from __future__ import annotations

from typing import Any

import psycopg


def flow_problems(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Every flow (drafts included) whose structure would fail the publish checks: its first problem.

    The public SQL function stepsync.check_flows() does the work (a DBA can call it too).
    """
    rows = conn.execute(
        "SELECT f.tree_id, f.name, f.status, t.is_active, f.problem, f.path, f.hint"
        "  FROM stepsync.check_flows() AS f JOIN public.trees AS t ON t.id = f.tree_id"
        " ORDER BY f.name, f.tree_id").fetchall()
    return [{"tree_id": tree, "name": name, "status": status, "listed": status == "published" and active,
             "problem": problem, "path": path, "hint": hint}
            for tree, name, status, active, problem, path, hint in rows]


def library_differences(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """check_library()'s rows but the publish-check failures (flow_problems reports those)."""
    rows = conn.execute("SELECT difference, tree_id, source_node_id, entry FROM stepsync.check_library()").fetchall()
    return [{"difference": d, "tree_id": t, "node_id": n, "entry": e} for d, t, n, e in rows]
