"""Row-level security and direct clients (docs/contract.md §12): what `install`, `sql`, `status` and
`doctor` do about it. The rules themselves are SQL: stepsync.restore_policies says which policies
stepsync keeps, stepsync.enable_row_security checks a VIEWER, stepsync.check_row_security finds what
would go wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from stepsync.database import StepsyncError, literal, one_row

TABLES = ("trees", "step_library", "users", "accounts")


@dataclass(frozen=True)
class RowSecurity:
    """What an install was asked to do about the library's rule as row-level security.

    viewer: enforce it with this VIEWER; remove: stop enforcing it; neither: keep what is set.
    """

    viewer: str | None = None
    remove: bool = False


def installed(conn: psycopg.Connection[Any]) -> bool:
    """Whether the installed revision has row-level security (stepsync_0005 and later)."""
    return bool(one_row(conn.execute("SELECT pg_catalog.to_regclass('stepsync.row_security') IS NOT NULL"))[0])


def check_viewer(conn: psycopg.Connection[Any], viewer: str) -> None:
    """Refuse VIEWER, in one line, unless it is one SQL expression of type uuid: before the install
    changes anything. The same test as stepsync.enable_row_security's (which runs it again when it
    is applied): SELECT (VIEWER) WHERE false, with a bind parameter so that it goes by the extended
    protocol, which takes one statement only, and is planned, not evaluated; its column's type."""
    if not viewer.strip():
        raise StepsyncError("--row-security: VIEWER must be an SQL expression of type uuid, not empty")
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            cursor = conn.execute("SELECT (" + viewer.replace("%", "%%") + "\n) AS viewer WHERE %s", (False,))
            assert cursor.description is not None
            kind = one_row(conn.execute("SELECT %s::regtype::text", (cursor.description[0].type_code,)))[0]
    except psycopg.errors.QueryCanceled:
        raise
    except psycopg.Error as exc:
        message = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
        raise StepsyncError(f"--row-security: VIEWER is not an SQL expression of type uuid: {message}"
                            f" [{exc.sqlstate}]") from None
    if kind != "uuid":
        raise StepsyncError(f"--row-security: VIEWER is not an SQL expression of type uuid: it is of type {kind}"
                            f" (cast it: ({viewer})::uuid)")


def apply(conn: psycopg.Connection[Any], wanted: RowSecurity) -> str | None:
    """Enforce, stop enforcing, or (neither asked) repair stepsync's policies when they are not as
    stepsync made them; on CONN, acting as the tables' owner, committed. Returns what it did, or None."""
    if wanted.viewer is not None:
        count = one_row(conn.execute("SELECT stepsync.enable_row_security(%s)", (wanted.viewer,)))[0]
        conn.commit()
        return (f"row-level security: step_library shows each role but the owner the steps its user may see,"
                f" the user being {wanted.viewer} ({count} stepsync policies)")
    if wanted.remove:
        was = one_row(conn.execute("SELECT r.viewer FROM stepsync.row_security AS r"))[0]
        conn.execute("SELECT stepsync.disable_row_security()")
        conn.commit()
        return ("row-level security: the library's rule is no longer enforced on step_library" if was is not None
                else "row-level security: the library's rule was not enforced; nothing to remove")
    damaged = one_row(conn.execute(
        "SELECT count(*) FROM stepsync.check_row_security() AS c"
        " WHERE c.kind = 'policy_changed' OR (c.kind = 'sync_blocked' AND c.object LIKE 'table %%')"))[0]
    if not damaged:
        conn.rollback()
        return None
    count = one_row(conn.execute("SELECT stepsync.restore_policies()"))[0]
    conn.commit()
    return f"stepsync's row-level security policies were not as it made them: made again ({count})"


def sql(viewer: str) -> str:
    """The script's last statement for `stepsync sql --row-security VIEWER`."""
    return ("-- Row-level security (docs/contract.md §12.2): the library's rule enforced on step_library.\n"
            f"SELECT stepsync.enable_row_security({literal(viewer)});\n")


def describe(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """For `stepsync status`: per table, whether row-level security is enabled and forced, the VIEWER in
    force (None: the library's rule is not enforced as row-level security), and stepsync's policies."""
    rows = conn.execute(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
        "       (SELECT count(*) FROM pg_catalog.pg_policy AS p WHERE p.polrelid = c.oid),"
        "       (SELECT coalesce(array_agg(p.polname::text ORDER BY p.polname), '{}') FROM pg_catalog.pg_policy AS p"
        "         WHERE p.polrelid = c.oid AND p.polname LIKE 'stepsync\\_%%')"
        "  FROM pg_catalog.pg_class AS c"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)"
        " ORDER BY array_position(%s, c.relname::text)", (list(TABLES), list(TABLES))).fetchall()
    tables = {name: {"enabled": enabled, "forced": forced, "policies": int(count), "stepsync_policies": list(ours)}
              for name, enabled, forced, count, ours in rows}
    viewer = (one_row(conn.execute("SELECT r.viewer FROM stepsync.row_security AS r"))[0]
              if installed(conn) else None)
    return {"tables": tables, "viewer": viewer}


def render(info: dict[str, Any]) -> list[str]:
    """The status lines: one for the tables, one for the VIEWER."""
    parts = []
    for name, table in info["tables"].items():
        state = "off" if not table["enabled"] else ("forced" if table["forced"] else "enabled")
        parts.append(f"{name} {state}")
    viewer = info["viewer"]
    return ["row-level security: " + ", ".join(parts),
            ("library rule enforced as row-level security, the user being " + viewer) if viewer is not None
            else "library rule not enforced as row-level security (stepsync install --row-security VIEWER)"]


def findings(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """For `stepsync doctor`: (kind, object, message with its fix), from stepsync.check_row_security."""
    if not installed(conn):
        return []
    rows = conn.execute("SELECT c.kind, c.object, c.problem, c.fix FROM stepsync.check_row_security() AS c"
                        " ORDER BY 1, 2").fetchall()
    return [(kind, obj, f"{problem}: {fix}") for kind, obj, problem, fix in rows]
