"""`stepsync status`: what is installed, and what the flows and the library hold.

Read-only (the session is set read-only before the first query), so it also
runs on a hot standby. The revision, the package's newest revision and the
install mode come from stepsync.history (revision_info).
"""

from __future__ import annotations

from typing import Any

import click
import psycopg

from stepsync import citus, database, replica
from stepsync import row_security as rls
from stepsync.database import scalar
from stepsync.history import require_installed
from stepsync.install import flows_after, unfinished_backfill
from stepsync.output import cell, emit_json, print_table

STATES = ("listed", "draft", "inactive", "archived")
KNOWN_TYPES = ("troubleshooting", "procedural", "maintenance")


def _flows(conn: psycopg.Connection[Any]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    rows = conn.execute(
        "SELECT t.tree_type,"
        "       CASE WHEN t.status = 'archived' THEN 'archived'"
        "            WHEN NOT t.is_active THEN 'inactive'"
        "            WHEN t.status = 'published' THEN 'listed'"
        "            ELSE 'draft' END AS state,"
        "       count(*)"
        "  FROM public.trees AS t GROUP BY 1, 2").fetchall()
    by_type: dict[str, dict[str, int]] = {
        kind: {"total": 0, **{state: 0 for state in STATES}} for kind in KNOWN_TYPES}
    totals = {"total": 0, **{state: 0 for state in STATES}}
    for kind, state, count in rows:
        counts = by_type.setdefault(kind, {"total": 0, **{s: 0 for s in STATES}})
        counts[state] += count
        counts["total"] += count
        totals[state] += count
        totals["total"] += count
    return totals, by_type


def _library(conn: psycopg.Connection[Any]) -> tuple[dict[str, int], Any]:
    row = conn.execute(
        "SELECT count(*),"
        "       count(*) FILTER (WHERE s.is_flow_synced AND s.is_active),"
        "       count(*) FILTER (WHERE s.is_flow_synced AND NOT s.is_active),"
        "       count(*) FILTER (WHERE NOT s.is_flow_synced AND s.forked_from_id IS NULL),"
        "       count(*) FILTER (WHERE s.forked_from_id IS NOT NULL),"
        "       count(*) FILTER (WHERE s.is_flow_synced AND s.source_tree_id IS NULL),"
        "       max(s.last_synced_at) FILTER (WHERE s.is_flow_synced)"
        "  FROM public.step_library AS s").fetchone()
    assert row is not None
    keys = ("total", "synced_active", "synced_retired", "hand_made", "forks", "synced_orphaned")
    return dict(zip(keys, (int(v) for v in row[:6]), strict=True)), row[6]


def _owners(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT c.relname, pg_catalog.pg_get_userbyid(c.relowner),"
        "       pg_catalog.pg_has_role(current_user, c.relowner, 'MEMBER')"
        "  FROM pg_catalog.pg_class AS c"
        " WHERE c.relnamespace = 'public'::regnamespace"
        "   AND c.relname IN ('accounts', 'users', 'trees', 'step_library') AND c.relkind IN ('r', 'p')"
        " ORDER BY c.relname").fetchall()
    me = scalar(conn, "SELECT current_user")
    superuser = scalar(conn, "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")
    tables = {name: owner for name, owner, _ in rows}
    owners = set(tables.values())
    return {
        "tables": tables,
        "role": owners.pop() if len(owners) == 1 else None,
        "connected_as": me,
        "connected_as_owner": any(member for _, _, member in rows if member) or bool(superuser),
        "superuser": bool(superuser),
    }


def backfill(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """The backfill an install left unfinished (stepsync.backfill_progress), with the flows still to do; None
    when there is none, or when this role may not read the record (`stepsync doctor` says so then)."""
    readable = scalar(conn, "SELECT CASE WHEN pg_catalog.to_regclass('stepsync.backfill_progress') IS NULL THEN false"
                            " ELSE pg_catalog.has_table_privilege('stepsync.backfill_progress', 'SELECT') END")
    pending = unfinished_backfill(conn) if readable else None
    if pending is None:
        return None
    return {**pending.as_json(), "flows_left": flows_after(conn, pending.after_tree_id)}


def collect(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The whole status as a JSON-ready dict (docs/contract.md §7 shape, plus details)."""
    conn.execute("SET default_transaction_read_only = on")
    # Count as the sync reads: its stepsync_sync policies let the owner past the application's own
    # row-level security (docs/contract.md §12.1); for any other role the marker changes nothing.
    conn.execute("SELECT pg_catalog.set_config('stepsync.sync_writing', 'on', false)")
    info = require_installed(conn)
    flows, by_type = _flows(conn)
    library, last_synced_at = _library(conn)
    owner = _owners(conn)
    server_version = scalar(conn, "SELECT split_part(current_setting('server_version'), ' ', 1)")
    in_recovery = scalar(conn, "SELECT pg_catalog.pg_is_in_recovery()")
    states = replica.trigger_states(conn)
    unfinished = backfill(conn)
    row_security = rls.describe(conn)
    warnings = []
    if owner["connected_as_owner"]:
        who = "a superuser" if owner["superuser"] else f"a member of {owner['role'] or 'the tables owner'}"
        warnings.append(
            f"connected as {owner['connected_as']}, {who}: an owner can bypass the read-only rule"
            " (ALTER TABLE ... DISABLE TRIGGER); let the application connect as a role that does not own the tables")
    trigger_mode = replica.mode(states)
    if trigger_mode in ("missing", "disabled", "mixed"):
        warnings.append(f"stepsync's triggers are {trigger_mode}: run `stepsync doctor`")
    if info["head_revision"] and info["revision"] != info["head_revision"]:
        warnings.append(f"revision {info['revision']} is not the package's newest ({info['head_revision']}):"
                        " run `stepsync install`")
    if unfinished is not None:
        warnings.append(f"the backfill an install started is unfinished ({unfinished['flows_done']} flows done,"
                        f" {unfinished['flows_left']} left): run `stepsync install` to finish it")
    return {
        "database": conn.info.dbname,
        "server_version": server_version,
        "in_recovery": bool(in_recovery),
        "revision": info["revision"],
        "head_revision": info["head_revision"],
        "up_to_date": info["head_revision"] is not None and info["revision"] == info["head_revision"],
        "install_mode": info["install_mode"],
        "flows": flows,
        "flows_by_type": by_type,
        "library": library,
        "last_synced_at": last_synced_at,
        "owner": owner,
        "triggers": trigger_mode,
        "backfill": unfinished,
        "row_security": row_security,
        "citus": citus.describe(conn),
        "warnings": warnings,
    }


def render(status: dict[str, Any]) -> None:
    """Print the status as text and tables."""
    import rich.table  # noqa: F401 - a missing rich fails here, before anything is printed

    mode = f", installed {status['install_mode']}" if status["install_mode"] else ""
    newest = status["head_revision"] or "unknown"
    standby = ", a standby (read-only)" if status["in_recovery"] else ""
    click.echo(f"stepsync revision {status['revision']} (package's newest: {newest}){mode}")
    click.echo(f"database {status['database']} on PostgreSQL {status['server_version']}{standby}")
    rows = [(kind, *(counts[s] for s in STATES), counts["total"]) for kind, counts in status["flows_by_type"].items()]
    rows.append(("all", *(status["flows"][s] for s in STATES), status["flows"]["total"]))
    right = {c: "right" for c in (*STATES, "total")}
    print_table(("flows", *STATES, "total"), rows, justify=right)
    lib = status["library"]
    print_table(("library", "entries"),
                [("synced, active", lib["synced_active"]), ("synced, retired", lib["synced_retired"]),
                 ("hand-made", lib["hand_made"]), ("forks", lib["forks"]), ("total", lib["total"])],
                justify={"entries": "right"})
    click.echo(f"last sync: {cell(status['last_synced_at']) or 'never'}")
    owner = status["owner"]
    owners = owner["role"] or ", ".join(f"{t}: {o}" for t, o in owner["tables"].items())
    me = owner["connected_as"] + (" (an owner)" if owner["connected_as_owner"] else " (not an owner)")
    click.echo(f"tables owned by {owners}; connected as {me}")
    click.echo(f"triggers: {status['triggers']}")
    for line in rls.render(status["row_security"]) + citus.render(status.get("citus")):
        click.echo(line)
    unfinished = status.get("backfill")
    if unfinished is not None:
        click.echo(f"backfill: unfinished (started {cell(unfinished['started_at'])}, revision"
                   f" {unfinished['revision']}): {unfinished['flows_done']} flows done, {unfinished['flows_left']}"
                   f" left, {unfinished['rows_written']} library rows written or retired so far;"
                   " `stepsync install` finishes it")
    for warning in status["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def run(url: str, as_json: bool) -> None:
    """`stepsync status [--json]`."""
    with database.connect(url, autocommit=True) as conn:
        report = collect(conn)
    if as_json:
        emit_json(report)
    else:
        render(report)
