"""`stepsync replica`: show how stepsync's triggers fire under logical replication, or switch them.

What the modes mean, and the switch itself, are in stepsync.replica (docs/replication.md).
"""

from __future__ import annotations

from typing import Any

import click
import psycopg

from stepsync import database
from stepsync.database import StepsyncError, scalar
from stepsync.output import emit_json, print_table
from stepsync.replica import report, switch


def run(url: str, action: str | None, as_json: bool) -> int:
    """`stepsync replica [--enable-always | --reset] [--json]`; returns the exit status."""
    with database.connect(url, autocommit=True) as conn:
        return show_or_switch(conn, action, as_json)


def show_or_switch(conn: psycopg.Connection[Any], action: str | None, as_json: bool) -> int:
    """The command on CONN (autocommit): switch when ACTION says so, then print the state."""
    if not scalar(conn, "SELECT to_regnamespace('stepsync') IS NOT NULL"):
        raise StepsyncError(f"stepsync is not installed in database {conn.info.dbname}:"
                            " run `stepsync install` (or `stepsync migrate` for a new database)")
    warnings: list[str] = []
    if action is not None:
        warnings = switch(conn, always=(action == "always"))
    state = report(conn)
    state["warnings"] = warnings
    if as_json:
        emit_json(state)
    else:
        fk = state["foreign_key_trigger"]
        rows = [(t["table"], t["trigger"], t["enabled"], "yes" if t["replica_set"] else "") for t in state["triggers"]]
        if fk is not None:
            rows.append((fk["table"], f"{fk['trigger']} ({fk['constraint']} ON DELETE)", fk["enabled"], "yes"))
        print_table(("table", "trigger", "fires", "switched by --enable-always"), rows)
        for sub in state["subscriptions"]:
            tables = ", ".join(sub["tables"]) or "neither trees nor step_library"
            click.echo(f"subscription {sub['name']}{'' if sub['enabled'] else ' (disabled)'}: replicates {tables}")
        explain = {
            "default": "mode: default (the triggers fire for local writes; replicated rows are not synced here)",
            "always": "mode: always (replicated writes to public.trees sync this database's own library)",
        }
        click.echo(explain.get(state["mode"], f"mode: {state['mode']}: see `stepsync doctor`"))
        if action == "always":
            click.echo("if public.trees already holds replicated flows, run `stepsync resync --all` once")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    return 0
