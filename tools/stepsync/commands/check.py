"""`stepsync check [--json]`: every flow that would fail the publish checks, and every library difference.

Changes nothing. The rows come from stepsync.check_flows() and stepsync.check_library()
(stepsync.consistency); exit status 1 when there is any.
"""

from __future__ import annotations

from typing import Any

import click
import psycopg

from stepsync import database
from stepsync.consistency import flow_problems, library_differences
from stepsync.output import emit_json, print_table


def run(url: str, as_json: bool) -> int:
    """Print the flows failing the publish checks and the library differences; returns the exit status."""
    with database.connect(url, autocommit=True) as conn:
        return check(conn, as_json)


def check(conn: psycopg.Connection[Any], as_json: bool) -> int:
    """The command on CONN (autocommit)."""
    flows = flow_problems(conn)
    differences = library_differences(conn)
    if as_json:
        emit_json({"flows": flows, "differences": differences})
    else:
        if flows:
            print_table(("flow", "name", "status", "first problem", "JSON path"),
                        [(f["tree_id"], f["name"], f["status"], f["problem"], f["path"] or "") for f in flows],
                        title="flows that would fail the publish checks")
        if differences:
            print_table(("difference", "flow", "node"),
                        [(d["difference"], d["tree_id"], d["node_id"] or "") for d in differences],
                        title="library differences (stepsync.check_library)")
        click.echo(f"{len(flows)} flows fail the publish checks; {len(differences)} library differences")
    return 1 if flows or differences else 0
