"""stepsync's triggers and logical replication: what fires where, and the switch `stepsync replica` makes.

PostgreSQL's logical replication applies rows on a subscriber with
session_replication_role = replica, so ordinary triggers (ENABLE, the
default) do not fire for replicated rows; ENABLE ALWAYS ones do. Two set-ups
work (docs/replication.md):

* both public.trees and public.step_library published: the subscriber gets the
  publisher's library as it is. Its triggers must stay as they are (the
  default, `stepsync replica --reset`), or the library would be written twice.
* only public.trees published: the subscriber derives its own library.
  `stepsync replica --enable-always` switches the sync's triggers to ENABLE
  ALWAYS: the three sync triggers on trees (t20_retire_on_delete,
  t30_sync_on_insert, t31_sync_on_update) and every stepsync trigger on
  step_library (the guards, the marker check, t10_set_updated_at, which the
  sync's rewrites rely on for updated_at). trees' t10_set_updated_at stays as
  it is: replicated rows keep the publisher's updated_at. As a superuser it
  also switches the foreign key's ON DELETE SET NULL action on trees (an
  internal trigger, which only a superuser may alter), so that a flow deleted
  on the publisher leaves its retired entries with source_tree_id null, as on
  the publisher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from stepsync.database import StepsyncError, scalar

TABLES = ("trees", "step_library")
ENABLED = {"O": "origin", "A": "always", "R": "replica", "D": "disabled"}


def expected_triggers() -> dict[str, tuple[str, ...]]:
    """table -> stepsync's trigger names on it: stepsync.owned's list and the packaged
    db/triggers/<table>__<trigger>.sql files (the union, should one lag behind the other)."""
    from stepsync.paths import TRIGGERS_DIR

    found: dict[str, list[str]] = {table: [] for table in TABLES}
    try:
        from stepsync import owned

        for table, names in owned.TRIGGERS.items():
            found.setdefault(table, []).extend(names)
    except (ImportError, AttributeError):
        pass
    for path in sorted(TRIGGERS_DIR.glob("*__*.sql")):
        table, _, trigger = path.stem.partition("__")
        if table in TABLES:
            found[table].append(trigger)
    return {table: tuple(sorted(set(names))) for table, names in found.items()}


def in_replica_set(table: str, trigger: str, function: str | None = None) -> bool:
    """True for the triggers `--enable-always` switches: all of stepsync's but those on trees that only
    keep trees.updated_at (stepsync.tg_set_updated_at): replicated flows keep the publisher's updated_at."""
    return not (table == "trees" and "updated_at" in (function or trigger))


@dataclass
class TriggerState:
    table: str
    trigger: str
    enabled: str          # origin, always, replica, disabled or missing
    replica_set: bool     # switched by --enable-always

    def as_json(self) -> dict[str, Any]:
        return {"table": f"public.{self.table}", "trigger": self.trigger, "enabled": self.enabled,
                "replica_set": self.replica_set}


def trigger_states(conn: psycopg.Connection[Any]) -> list[TriggerState]:
    """The state of every trigger stepsync owns on trees and step_library."""
    rows = conn.execute(
        "SELECT c.relname, t.tgname, t.tgenabled::text, p.proname::text,"
        "       p.pronamespace = to_regnamespace('stepsync')::oid FROM pg_catalog.pg_trigger AS t"
        " JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid"
        " JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY (%s) AND NOT t.tgisinternal",
        (list(TABLES),)).fetchall()
    present = {(table, name): (ENABLED.get(state, state), function) for table, name, state, function, _ in rows}
    expected = expected_triggers()
    for table, name, _, _, ours in rows:   # a trigger of ours that neither list names yet
        if ours and name not in expected.get(table, ()):
            expected[table] = (*expected.get(table, ()), name)
    states = []
    for table, names in expected.items():
        for name in names:
            enabled, function = present.get((table, name), ("missing", None))
            states.append(TriggerState(table, name, enabled or "missing", in_replica_set(table, name, function)))
    return states


def foreign_key_trigger(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """The internal ON DELETE action trigger on trees of step_library's foreign key to it, or None."""
    row = conn.execute(
        "SELECT t.tgname, t.tgenabled::text, con.conname FROM pg_catalog.pg_trigger AS t"
        " JOIN pg_catalog.pg_constraint AS con ON con.oid = t.tgconstraint"
        " WHERE t.tgrelid = to_regclass('public.trees') AND con.contype = 'f'"
        "   AND con.conrelid = to_regclass('public.step_library') AND con.confrelid = to_regclass('public.trees')"
        "   AND (t.tgtype::int & 8) <> 0"   # TRIGGER_TYPE_DELETE
        " ORDER BY con.conname LIMIT 1").fetchone()
    if row is None:
        return None
    return {"table": "public.trees", "trigger": row[0], "enabled": ENABLED.get(row[1], row[1]), "constraint": row[2]}


def subscriptions(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """Subscriptions of this database and which of trees and step_library each one replicates here."""
    try:
        with conn.transaction():
            rows = conn.execute(
                "SELECT s.subname, s.subenabled,"
                "       coalesce(array_agg(c.relname::text ORDER BY c.relname)"
                "                FILTER (WHERE c.relname IS NOT NULL), '{}')"
                "  FROM pg_catalog.pg_subscription AS s"
                "  LEFT JOIN pg_catalog.pg_subscription_rel AS r ON r.srsubid = s.oid"
                "  LEFT JOIN pg_catalog.pg_class AS c ON c.oid = r.srrelid"
                "       AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY (%s)"
                " WHERE s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database AS d"
                "                     WHERE d.datname = pg_catalog.current_database())"
                " GROUP BY s.subname, s.subenabled ORDER BY s.subname", (list(TABLES),)).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return []
    return [{"name": name, "enabled": enabled, "tables": [f"public.{t}" for t in tables]}
            for name, enabled, tables in rows]


def mode(states: list[TriggerState]) -> str:
    """default (every trigger ENABLE), always (the replica set ENABLE ALWAYS), or what is wrong."""
    if any(s.enabled == "missing" for s in states):
        return "missing"
    if any(s.enabled == "disabled" for s in states):
        return "disabled"
    replica = {s.enabled for s in states if s.replica_set}
    others = {s.enabled for s in states if not s.replica_set}
    if others - {"origin"}:
        return "mixed"
    if replica == {"origin"}:
        return "default"
    if replica == {"always"}:
        return "always"
    return "mixed"


def report(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything `stepsync replica` shows."""
    states = trigger_states(conn)
    return {
        "mode": mode(states),
        "triggers": [s.as_json() for s in states],
        "foreign_key_trigger": foreign_key_trigger(conn),
        "subscriptions": subscriptions(conn),
    }


def _is_superuser(conn: psycopg.Connection[Any]) -> bool:
    return bool(scalar(conn, "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"))


def switch(conn: psycopg.Connection[Any], always: bool) -> list[str]:
    """ENABLE ALWAYS (always=True) or plain ENABLE the replica set of triggers, in one short transaction.

    Returns warnings (one line each) for what could not be done. Raises
    StepsyncError when --enable-always would make the library be written twice.
    """
    warnings: list[str] = []
    if always:
        for sub in subscriptions(conn):
            if "public.step_library" in sub["tables"]:
                raise StepsyncError(
                    f"subscription {sub['name']} replicates public.step_library into this database: with the sync"
                    " triggers ENABLE ALWAYS the library would be written twice; either publish only public.trees"
                    " to this database or leave the triggers as they are (see docs/replication.md)")
    states = trigger_states(conn)
    missing = [f"{s.trigger} on public.{s.table}" for s in states if s.enabled == "missing"]
    if missing:
        warnings.append(f"stepsync's triggers {', '.join(missing)} are missing (left alone): see `stepsync doctor`")
    states = [s for s in states if s.enabled != "missing"]
    verb = "ENABLE ALWAYS TRIGGER" if always else "ENABLE TRIGGER"
    fk = foreign_key_trigger(conn)
    superuser = _is_superuser(conn)
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '5s'")
        for s in states:
            if s.replica_set:
                conn.execute(f'ALTER TABLE public.{s.table} {verb} "{s.trigger}"')
            elif s.enabled != "origin":
                conn.execute(f'ALTER TABLE public.{s.table} ENABLE TRIGGER "{s.trigger}"')
        if fk is not None and fk["enabled"] != ("always" if always else "origin"):
            if superuser:
                conn.execute(f'ALTER TABLE public.trees {verb} "{fk["trigger"]}"')
            elif always:
                warnings.append(
                    f"not a superuser: the foreign key {fk['constraint']} (its ON DELETE SET NULL, internal trigger"
                    f" {fk['trigger']} on public.trees) still does not fire for replicated deletes, so a flow"
                    " deleted on the publisher leaves its retired entries' source_tree_id pointing at it; run"
                    " `stepsync replica --enable-always` again as a superuser")
            else:
                warnings.append(
                    f"not a superuser: the internal trigger {fk['trigger']} of {fk['constraint']} on public.trees"
                    " stays ENABLE ALWAYS; run `stepsync replica --reset` again as a superuser")
    return warnings
