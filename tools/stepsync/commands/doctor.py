"""`stepsync doctor`: checks a live installation; one finding per problem, each naming the object and the fix.

Checks, in order (a check that cannot run, for lack of a privilege say, is a
finding of its own):

* installed: schema stepsync and a recorded revision;
* revision: the installed revision is the package's newest;
* triggers: every trigger stepsync owns exists and fires (not DISABLEd by a
  bulk load that never re-enabled it; consistently ENABLE or, on a
  subscriber set up by `stepsync replica --enable-always`, ENABLE ALWAYS);
* definitions: every function, trigger and view of the packaged SQL
  (db/functions, db/triggers, db/views: stepsync.paths.object_files) is installed as the file
  defines it, and schema stepsync holds no function the files do not define;
* ownership: the tables the sync writes and the sync's SECURITY DEFINER
  functions have one owner (the marker check and the guards rely on it);
* replication: a subscription that replicates trees without step_library
  needs the sync triggers ENABLE ALWAYS, one that replicates both needs them
  not to be;
* backfill: a backfill an install left unfinished (stepsync.backfill_progress
  has its row: the install was cut off; `stepsync install` finishes it);
* library: the differences stepsync.check_library() finds (counted, the first few);
* flows: flows whose structure would fail the publish checks (counted).

How definitions are compared. By default doctor is read-only (its session is
read-only, it takes no lock and writes nothing, so any role that can read the
catalog may run it, on a hot standby too). It parses each packaged file
(stepsync.sqltext) and compares, for a function: the body text byte for byte (pg_proc.prosrc is the
text between the dollar quotes exactly as it was written), the arguments and
result type (type names resolved by the server, so `varchar` and `character
varying` agree), the language, volatility, strictness, SECURITY DEFINER, the
SET clauses, the comment and whether PUBLIC may execute it; for a trigger: its
function, timing, events, UPDATE OF columns, level, comment and its WHEN
clause; for a view: its query, its columns, options and comments. A WHEN
clause or a view query is compared by how the server plans it: EXPLAIN
VERBOSE (which runs nothing) of the installed expression (from
pg_get_triggerdef) and of the file's, or of `SELECT * FROM` the view and of
the file's query, so the server's own rewrites (casts, parentheses, IS NOT
DISTINCT FROM, row comparisons) are the same on both sides; a role without
SELECT on the table gets a text comparison without casts, parentheses, case
and spacing instead.
`--exact` instead runs every packaged file inside a transaction that is rolled
back and compares pg_get_functiondef, pg_get_triggerdef and pg_get_viewdef
before and after (the drift gate's method, tests/test_drift.py): exact, but it
needs the owner's rights and takes brief locks on trees, step_library and the
view (lock_timeout 2 s), so it is not for a busy primary at peak time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click
import psycopg

from stepsync import database, replica
from stepsync import row_security as rls
from stepsync.citus import is_citus
from stepsync.consistency import flow_problems, library_differences
from stepsync.database import StepsyncError, scalar
from stepsync.history import revision_info
from stepsync.install import flows_after, unfinished_backfill
from stepsync.output import emit_json
from stepsync.paths import object_files
from stepsync.sqltext import (
    PackagedFunction,
    PackagedTrigger,
    PackagedView,
    normalize_expression,
    packaged,
    split_top,
)

LIBRARY_FIRST = 5   # differences and flows shown in a finding


@dataclass
class Finding:
    check: str
    object: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check, "object": self.object, "message": self.message, **self.details}


# --- comparing with the catalog (read-only) --------------------------------------------------

_FUNCTIONS_SQL = """
SELECT p.oid, p.proname, p.oid::regprocedure::text,
       pg_catalog.pg_get_function_identity_arguments(p.oid), pg_catalog.pg_get_function_result(p.oid),
       l.lanname, p.provolatile::text, p.proisstrict, p.prosecdef, p.proparallel::text,
       coalesce(p.proconfig, '{}'), p.prosrc, pg_catalog.obj_description(p.oid, 'pg_proc'),
       EXISTS (SELECT 1 FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
       p.pronargdefaults, pg_catalog.pg_get_userbyid(p.proowner)
  FROM pg_catalog.pg_proc AS p
  JOIN pg_catalog.pg_language AS l ON l.oid = p.prolang
 WHERE p.pronamespace = 'stepsync'::regnamespace
 ORDER BY p.proname, p.oid
"""


def _resolve_types(conn: psycopg.Connection[Any], names: set[str]) -> dict[str, str | None]:
    """Type names as written -> as the server prints them (None when unknown)."""
    return {name: scalar(conn, "SELECT to_regtype(%s)::text", (name,)) for name in sorted(names)}


def _expected_signature(fn: PackagedFunction, types: dict[str, str | None]) -> tuple[str, str | None]:
    identity = ", ".join(f"{n} {types.get(t) or t}" for n, t, _ in fn.args)
    if fn.procedure:
        return identity, None
    returns = fn.returns
    table = re.match(r"TABLE\s*\((.*)\)\s*$", returns, re.IGNORECASE | re.DOTALL)
    if table:
        cols = []
        for col in split_top(table.group(1)):
            cname, _, ctype = " ".join(col.split()).partition(" ")
            cols.append(f"{cname} {types.get(ctype) or ctype}")
        result = f"TABLE({', '.join(cols)})"
    elif returns.upper().startswith("SETOF "):
        t = returns[6:].strip()
        result = f"SETOF {types.get(t) or t}"
    else:
        result = types.get(returns) or returns
    return identity, result


def _type_names(fn: PackagedFunction) -> set[str]:
    names = {t for _, t, _ in fn.args}
    if fn.procedure:
        return names
    table = re.match(r"TABLE\s*\((.*)\)\s*$", fn.returns, re.IGNORECASE | re.DOTALL)
    if table:
        names |= {" ".join(c.split()).partition(" ")[2] for c in split_top(table.group(1))}
    elif fn.returns.upper().startswith("SETOF "):
        names.add(fn.returns[6:].strip())
    else:
        names.add(fn.returns)
    return names


def compare_functions(conn: psycopg.Connection[Any], functions: list[PackagedFunction]) -> list[Finding]:
    rows = [(oid, name, signature.replace(",", ", "), *rest)
            for oid, name, signature, *rest in conn.execute(_FUNCTIONS_SQL).fetchall()]
    installed: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        installed.setdefault(row[1], []).append(row)
    types = _resolve_types(conn, set().union(*(_type_names(f) for f in functions)) if functions else set())
    findings = []
    for fn in functions:
        identity, result = _expected_signature(fn, types)
        candidates = installed.pop(fn.name, [])
        match = next((r for r in candidates if r[3] == identity), None)
        for other in candidates:
            if other is not match:
                findings.append(Finding("definitions", other[2],
                                        f"function {other[2]} is not in the packaged SQL ({fn.file} defines"
                                        f" stepsync.{fn.name}({identity})): drop it, or run `stepsync install`",
                                        {"file": fn.file}))
        label = f"stepsync.{fn.name}({', '.join(types.get(t) or t for _, t, _ in fn.args)})"
        if match is None:
            findings.append(Finding("definitions", label,
                                    f"function {label} is missing: re-create it from the packaged SQL"
                                    f" ({fn.file}), or run `stepsync install`", {"file": fn.file}))
            continue
        (_, _, sig, _, got_result, language, volatility, strict, secdef, parallel, config, body, comment,
         public_x, ndefaults, _) = match
        differences = []
        if body != fn.body:
            differences.append("body")
        if got_result != result:
            differences.append(f"result ({got_result}, the file says {result})")
        if language != fn.language:
            differences.append(f"language ({language})")
        if volatility != fn.volatility:
            differences.append("volatility")
        if bool(strict) != fn.strict:
            differences.append("strictness")
        if bool(secdef) != fn.security_definer:
            differences.append("SECURITY DEFINER" if fn.security_definer else "SECURITY INVOKER")
        if parallel != fn.parallel:
            differences.append("PARALLEL")
        if list(config) != fn.config:
            differences.append(f"SET ({', '.join(config) or 'none'}; the file says {', '.join(fn.config) or 'none'})")
        if (comment or None) != (fn.comment or None):
            differences.append("comment")
        if bool(public_x) != fn.public_execute:
            differences.append("EXECUTE granted to PUBLIC" if public_x else "EXECUTE revoked from PUBLIC")
        if ndefaults != sum(1 for *_, d in fn.args if d):
            differences.append("argument defaults")
        if differences:
            findings.append(Finding("definitions", sig,
                                    f"function {sig} differs from the packaged SQL ({', '.join(differences)}):"
                                    f" re-create it from {fn.file}, or run `stepsync install`",
                                    {"file": fn.file, "differences": differences}))
    for _, extra in sorted(installed.items()):
        for row in extra:
            findings.append(Finding("definitions", row[2],
                                    f"function {row[2]} is not in the packaged SQL: drop it if nothing uses it,"
                                    " or install the stepsync version that defines it", {}))
    return findings


_TRIGGERS_SQL = """
SELECT c.relname, t.tgname, t.tgtype::int, p.oid::regproc::text,
       coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                   FROM unnest(t.tgattr::int2[]) WITH ORDINALITY AS k (attnum, ord)
                   JOIN pg_catalog.pg_attribute AS a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum), '{}'),
       pg_catalog.pg_get_triggerdef(t.oid), pg_catalog.obj_description(t.oid, 'pg_trigger')
  FROM pg_catalog.pg_trigger AS t
  JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
  JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
 WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
"""


def _planned(conn: psycopg.Connection[Any], query: str) -> str | None:
    """QUERY as the server parses, analyses and plans it (EXPLAIN VERBOSE, which runs nothing), or None
    when it cannot (no SELECT privilege, say). Two spellings of one query plan alike: the server's own
    rewrites (IS NOT DISTINCT FROM into NOT ... IS DISTINCT FROM, row comparisons into column ones,
    casts, parentheses) are the same on both sides."""
    try:
        with conn.transaction():
            row = conn.execute(f"EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) {query}").fetchone()
    except psycopg.OperationalError:
        raise
    except psycopg.Error:
        return None
    return None if row is None else json.dumps(row[0], sort_keys=True)


def _same_expression(conn: psycopg.Connection[Any], table: str, installed: str | None, packaged: str | None) -> bool:
    """Whether a trigger's installed WHEN clause and the packaged one are the same expression."""
    if installed is None or packaged is None:
        return installed is None and packaged is None
    # Planned over two rows of the table's type, not over the table: no privilege needed, and on Citus
    # (which rewrites a trigger's WHEN as it propagates it) no distributed query.
    query = ("SELECT ({}) FROM pg_catalog.jsonb_populate_record(NULL::public.{}, '{{}}') AS old,"
             " pg_catalog.jsonb_populate_record(NULL::public.{}, '{{}}') AS new")
    mine, theirs = (_planned(conn, query.format(e, table, table)) for e in (installed, packaged))
    if mine is not None and theirs is not None:
        return mine == theirs
    return normalize_expression(installed) == normalize_expression(packaged)   # no SELECT on the table


def _when_of(triggerdef: str) -> str | None:
    m = re.search(r"\bWHEN \((.*)\) EXECUTE (?:FUNCTION|PROCEDURE) ", triggerdef, re.DOTALL)
    return m.group(1) if m else None


def compare_triggers(conn: psycopg.Connection[Any], triggers: list[PackagedTrigger]) -> list[Finding]:
    rows = {(r[0], r[1]): r for r in conn.execute(_TRIGGERS_SQL).fetchall()}
    findings = []
    for tg in triggers:
        label = f"trigger {tg.name} on public.{tg.table}"
        row = rows.get((tg.table, tg.name))
        if row is None:
            continue   # the triggers check reports missing ones
        _, _, tgtype, function, columns, triggerdef, comment = row
        differences = []
        timing = "INSTEAD OF" if tgtype & 64 else "BEFORE" if tgtype & 2 else "AFTER"
        events = [e for e, bit in (("INSERT", 4), ("DELETE", 8), ("UPDATE", 16), ("TRUNCATE", 32)) if tgtype & bit]
        if timing != tg.timing:
            differences.append(f"timing ({timing})")
        if sorted(events) != sorted(tg.events):
            differences.append(f"events ({' OR '.join(events)})")
        if bool(tgtype & 1) != tg.row:
            differences.append("FOR EACH ROW/STATEMENT")
        if list(columns) != tg.columns:
            differences.append(f"UPDATE OF columns ({', '.join(columns) or 'none'})")
        if function.removeprefix("pg_catalog.") != tg.function and function != f"stepsync.{tg.function}":
            differences.append(f"function ({function})")
        if not _same_expression(conn, tg.table, _when_of(triggerdef), tg.when):
            differences.append("WHEN clause")
        if (comment or None) != (tg.comment or None):
            differences.append("comment")
        if differences:
            findings.append(Finding("definitions", label,
                                    f"{label} differs from the packaged SQL ({', '.join(differences)}):"
                                    f" re-create it from {tg.file}", {"file": tg.file, "differences": differences}))
    return findings


def _columns(conn: psycopg.Connection[Any], query: str) -> list[tuple[str, int]] | None:
    """The names and type oids of QUERY's columns (it is run with LIMIT 0), or None when it cannot run."""
    try:
        with conn.transaction():
            cur = conn.execute(f"SELECT * FROM ({query.rstrip().rstrip(';')}) AS q LIMIT 0")
    except psycopg.OperationalError:
        raise
    except psycopg.Error:
        return None
    return [(c.name, c.type_code) for c in cur.description or ()]


def compare_views(conn: psycopg.Connection[Any], views: list[PackagedView]) -> list[Finding]:
    findings = []
    citus = is_citus(conn)
    for view in views:
        row = conn.execute(
            "SELECT pg_catalog.pg_get_viewdef(c.oid), coalesce(c.reloptions, '{}'),"
            "       pg_catalog.obj_description(c.oid, 'pg_class'),"
            "       coalesce((SELECT jsonb_object_agg(a.attname, pg_catalog.col_description(c.oid, a.attnum))"
            "                   FROM pg_catalog.pg_attribute AS a"
            "                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            "                    AND pg_catalog.col_description(c.oid, a.attnum) IS NOT NULL), '{}')"
            "  FROM pg_catalog.pg_class AS c WHERE c.oid = to_regclass(%s) AND c.relkind = 'v'",
            (view.name,)).fetchone()
        if row is None:
            findings.append(Finding("definitions", f"view {view.name}",
                                    f"view {view.name} is missing: re-create it from the packaged SQL"
                                    f" ({view.file}), or run `stepsync install`", {"file": view.file}))
            continue
        viewdef, options, comment, column_comments = row
        differences = []
        # On Citus a plan names the shards and the workers' queries: compare the texts there.
        mine, theirs = (None, None) if citus else (
            _planned(conn, f"SELECT * FROM ({q}) AS q") for q in (f"SELECT * FROM {view.name}",
                                                                  view.query.rstrip().rstrip(";")))
        same = mine == theirs if mine is not None and theirs is not None else \
            normalize_expression(viewdef) == normalize_expression(view.query)
        if not same or _columns(conn, f"SELECT * FROM {view.name}") != _columns(conn, view.query):
            differences.append("query")
        if sorted(o.lower() for o in options) != sorted(view.options):
            differences.append(f"options ({', '.join(options) or 'none'})")
        if (comment or None) != (view.comment or None):
            differences.append("comment")
        if dict(column_comments) != view.column_comments:
            differences.append("column comments")
        if differences:
            findings.append(Finding("definitions", f"view {view.name}",
                                    f"view {view.name} differs from the packaged SQL ({', '.join(differences)}):"
                                    f" re-create it from {view.file}", {"file": view.file,
                                                                        "differences": differences}))
    return findings


def compare_read_only(conn: psycopg.Connection[Any]) -> list[Finding]:
    """The default definitions check: the catalog against the parsed packaged SQL, writing nothing."""
    functions, triggers, views = packaged(citus=is_citus(conn))
    conn.execute("SELECT set_config('search_path', 'pg_catalog', false)")
    return compare_functions(conn, functions) + compare_triggers(conn, triggers) + compare_views(conn, views)


# --- comparing with the catalog (exact: apply and roll back) ----------------------------------

_DEFINITIONS_SQL = """
SELECT 'function ' || p.oid::regprocedure::text,
       pg_catalog.pg_get_functiondef(p.oid)
       || E'\\n-- comment: ' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '<none>')
       || E'\\n-- acl: ' || coalesce(p.proacl::text, '<default>')
  FROM pg_catalog.pg_proc AS p
 WHERE p.pronamespace = 'stepsync'::regnamespace
UNION ALL
SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text,
       pg_catalog.pg_get_triggerdef(t.oid)
       || E'\\n-- comment: ' || coalesce(pg_catalog.obj_description(t.oid, 'pg_trigger'), '<none>')
  FROM pg_catalog.pg_trigger AS t
  JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
 WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'view ' || c.oid::regclass::text,
       pg_catalog.pg_get_viewdef(c.oid)
       || E'\\n-- options: ' || coalesce(c.reloptions::text, '<none>')
       || E'\\n-- comment: ' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '<none>')
       || E'\\n-- acl: ' || coalesce(c.relacl::text, '<default>')
       || E'\\n-- columns: ' || coalesce((
              SELECT string_agg(a.attname || '=' || coalesce(pg_catalog.col_description(c.oid, a.attnum), '<none>'),
                                ', ' ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute AS a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
  FROM pg_catalog.pg_class AS c
 WHERE c.relkind IN ('v', 'm') AND c.relnamespace IN ('public'::regnamespace, 'stepsync'::regnamespace)
"""


def compare_exact(conn: psycopg.Connection[Any]) -> list[Finding]:
    """Apply every packaged file inside a transaction that is rolled back; compare definitions before and after."""
    files = {path: path.read_text(encoding="utf-8") for path in object_files()}
    views = {path: re.search(r"^CREATE (?:OR REPLACE )?VIEW (\S+)", text, re.MULTILINE) for path, text in files.items()}
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL lock_timeout = '2s'")
            conn.execute("SELECT set_config('search_path', 'pg_catalog', true)")
            before: dict[str, str] = dict(conn.execute(_DEFINITIONS_SQL).fetchall())
            for match in views.values():
                if match and scalar(conn, "SELECT to_regclass(%s)", (match.group(1),)):
                    conn.execute(f"DROP VIEW {match.group(1)} CASCADE")
            for _, text in sorted(files.items(), key=lambda item: views[item[0]] is None):
                conn.execute(text)
            after: dict[str, str] = dict(conn.execute(_DEFINITIONS_SQL).fetchall())
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StepsyncError("doctor --exact applies the packaged SQL in a transaction it rolls back, which needs"
                            f" the owner's rights ({exc.diag.message_primary}): run it as the tables' owner,"
                            " or without --exact") from None
    except psycopg.errors.LockNotAvailable:
        raise StepsyncError("doctor --exact could not take its locks within 2 s (busy tables):"
                            " run it again later, or without --exact") from None
    except psycopg.errors.ReadOnlySqlTransaction:
        raise StepsyncError("doctor --exact cannot run on a read-only server (a standby): run it without --exact"
                            " or on the primary") from None
    # Only what stepsync owns: an application's own triggers and views (a view on step_library_entries,
    # which the DROP ... CASCADE above removed inside the rolled-back transaction) are not ours to judge.
    ours = {f"trigger {name} on public.{table}"
            for table, names in replica.expected_triggers().items() for name in names}
    ours |= {f"view {m.group(1)}" for m in views.values() if m}
    findings = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new or not (key.startswith("function ") or key in ours):
            continue
        kind, _, name = key.partition(" ")
        if kind == "function":
            name = name.replace(",", ", ")
        if old is None:
            message = f"{name} is missing: re-create it from the packaged SQL, or run `stepsync install`"
        elif new is None:
            message = f"{name} is not in the packaged SQL: drop it if nothing uses it"
        else:
            message = f"{name} differs from the packaged SQL: re-create it from the packaged SQL"
        findings.append(Finding("definitions", f"{kind} {name}" if kind != "function" else name, message,
                                {"installed": old, "packaged": new}))
    return findings


# --- the other checks ----------------------------------------------------------------------------

def _check_revision(conn: psycopg.Connection[Any], info: dict[str, Any]) -> list[Finding]:
    if info["head_revision"] is None or info["revision"] == info["head_revision"]:
        return []
    return [Finding("revision", "stepsync",
                    f"installed revision {info['revision']} is not the package's newest ({info['head_revision']}):"
                    " run `stepsync install` to upgrade (if the database is newer than this package,"
                    " upgrade the stepsync package instead)",
                    {"revision": info["revision"], "head_revision": info["head_revision"]})]


def _check_triggers(conn: psycopg.Connection[Any]) -> list[Finding]:
    states = replica.trigger_states(conn)
    findings = []
    for s in states:
        label = f"trigger {s.trigger} on public.{s.table}"
        if s.enabled == "missing":
            findings.append(Finding("triggers", label, f"{label} is missing: re-create it from the packaged SQL"
                                    f" ({s.table}__{s.trigger}.sql), then `stepsync resync --all`"))
        elif s.enabled == "disabled":
            findings.append(Finding("triggers", label,
                                    f"{label} is disabled (a bulk load that never re-enabled it?):"
                                    f" ALTER TABLE public.{s.table} ENABLE TRIGGER {s.trigger};"
                                    " then `stepsync resync --all`"))
        elif s.enabled == "replica":
            findings.append(Finding("triggers", label,
                                    f"{label} is ENABLE REPLICA (it fires for replicated writes only, not for local"
                                    " ones): `stepsync replica --reset` (or --enable-always on a subscriber that"
                                    " derives its own library)"))
    live = [s for s in states if s.enabled in ("origin", "always")]
    if replica.mode(live) == "mixed" and live:
        always = [f"{s.trigger} on public.{s.table}" for s in live if s.enabled == "always"]
        findings.append(Finding("triggers", "public.trees, public.step_library",
                                f"stepsync's triggers are half switched to ENABLE ALWAYS ({', '.join(always)}):"
                                " run `stepsync replica --enable-always` on a subscriber that derives its own"
                                " library, `stepsync replica --reset` anywhere else"))
    return findings


def _check_ownership(conn: psycopg.Connection[Any]) -> list[Finding]:
    tables = dict(conn.execute(
        "SELECT c.relname, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relname IN ('trees', 'step_library')"
        "   AND c.relkind IN ('r', 'p')").fetchall())
    findings = []
    owner = tables.get("step_library")
    if tables.get("trees") and owner and tables["trees"] != owner:
        findings.append(Finding("ownership", "public.trees",
                                f"public.trees is owned by {tables['trees']} but public.step_library by {owner}:"
                                f" the sync runs as one owner: ALTER TABLE public.trees OWNER TO {owner}"
                                " (or the other way round), then `stepsync install` as that role"))
    if owner is None:
        return findings
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner) FROM pg_catalog.pg_proc AS p"
        " WHERE p.pronamespace = 'stepsync'::regnamespace AND p.prosecdef"
        "   AND pg_catalog.pg_get_userbyid(p.proowner) <> %s ORDER BY 1", (owner,)).fetchall()
    for signature, function_owner in rows:
        signature = signature.replace(",", ", ")
        findings.append(Finding("ownership", signature,
                                f"{signature} (SECURITY DEFINER, part of the sync) is owned by {function_owner} but"
                                f" public.step_library by {owner}, so publishing fails with 42501:"
                                f" ALTER FUNCTION {signature} OWNER TO {owner} (or `stepsync install` as {owner})"))
    return findings


def _check_replication(conn: psycopg.Connection[Any]) -> list[Finding]:
    findings = []
    states = replica.trigger_states(conn)
    current = replica.mode(states)
    for sub in replica.subscriptions(conn):
        tables = set(sub["tables"])
        if "public.trees" in tables and "public.step_library" in tables and current == "always":
            findings.append(Finding("replication", f"subscription {sub['name']}",
                                    f"subscription {sub['name']} replicates public.trees and public.step_library,"
                                    " and the sync triggers are ENABLE ALWAYS: the library is written twice"
                                    " (conflicts stop the subscription): `stepsync replica --reset`"))
        elif "public.trees" in tables and "public.step_library" not in tables and current == "default":
            findings.append(Finding("replication", f"subscription {sub['name']}",
                                    f"subscription {sub['name']} replicates public.trees but not"
                                    " public.step_library, and the sync triggers fire for local writes only: the"
                                    " library does not follow the flows: `stepsync replica --enable-always`, then"
                                    " `stepsync resync --all`"))
    fk = replica.foreign_key_trigger(conn)
    if current == "always" and fk is not None and fk["enabled"] != "always":
        findings.append(Finding("replication", f"trigger {fk['trigger']} on public.trees",
                                f"the sync triggers are ENABLE ALWAYS but the ON DELETE action of {fk['constraint']}"
                                " is not: a replicated delete leaves the retired entries' source_tree_id pointing at"
                                " the deleted flow: run `stepsync replica --enable-always` as a superuser"))
    return findings


def _check_backfill(conn: psycopg.Connection[Any]) -> list[Finding]:
    pending = unfinished_backfill(conn)
    if pending is None:
        return []
    left = flows_after(conn, pending.after_tree_id)
    started = pending.started_at.isoformat(sep=" ", timespec="seconds")
    return [Finding("backfill", "stepsync.backfill_progress",
                    f"the backfill the install of {pending.revision} started at {started} is unfinished"
                    f" ({pending.flows_done} flows done, {left} left; the install was cut off):"
                    " run `stepsync install` to finish it (it goes on where it stopped)",
                    {"flows_done": pending.flows_done, "flows_left": left, "rows_written": pending.rows_written,
                     "after_tree_id": pending.after_tree_id, "started_at": pending.started_at})]


def _check_library(conn: psycopg.Connection[Any]) -> list[Finding]:
    differences = [d for d in library_differences(conn) if d["difference"] in ("missing", "unexpected")]
    if not differences:
        return []
    first = "; ".join(f"{d['difference']} {d['tree_id']}/{d['node_id']}" for d in differences[:LIBRARY_FIRST])
    more = f"; and {len(differences) - LIBRARY_FIRST} more" if len(differences) > LIBRARY_FIRST else ""
    return [Finding("library", "public.step_library",
                    f"{len(differences)} differences between the library and the flows"
                    f" (stepsync.check_library()): {first}{more}: run `stepsync resync --all`",
                    {"count": len(differences),
                     "first": [{k: d[k] for k in ("difference", "tree_id", "node_id")}
                               for d in differences[:LIBRARY_FIRST]]})]


def _check_flows(conn: psycopg.Connection[Any]) -> list[Finding]:
    problems = flow_problems(conn)
    if not problems:
        return []
    listed = sum(1 for p in problems if p["listed"])
    first = "; ".join(f"{p['tree_id']} ({p['name']}): {p['problem']}" for p in problems[:LIBRARY_FIRST])
    more = f"; and {len(problems) - LIBRARY_FIRST} more" if len(problems) > LIBRARY_FIRST else ""
    return [Finding("flows", "public.trees",
                    f"{len(problems)} flows would fail the publish checks ({listed} of them listed): {first}{more}:"
                    " fix their structure (`stepsync check` lists them all)",
                    {"count": len(problems), "listed": listed,
                     "first": [{k: p[k] for k in ("tree_id", "problem", "path")} for p in problems[:LIBRARY_FIRST]]})]


def _check_row_security(conn: psycopg.Connection[Any]) -> list[Finding]:
    """Row-level security that would make a publish fail or show a client rows it should not see
    (stepsync.check_row_security, docs/contract.md §12.3)."""
    return [Finding("row_security", obj, message, {"kind": kind}) for kind, obj, message in rls.findings(conn)]


def _check_search_anchors(conn: psycopg.Connection[Any]) -> list[Finding]:
    """On Citus: a search reaches every worker through one row of stepsync.search_anchors (docs/contract.md
    §11.4); without it, search goes through the distributed tables (the same rows, slower). The keys a search
    uses are those kept in stepsync.search_sample_size; when they no longer reach each worker once (a shard
    moved or split, a worker added since they were kept), every search finds them again and walks twice."""
    if scalar(conn, "SELECT pg_catalog.to_regclass('stepsync.search_anchors')") is None:
        return []
    anchors = scalar(conn, "SELECT stepsync._search_anchors()") or []
    found = scalar(conn, "SELECT count(*) FROM stepsync.search_anchors WHERE tree_key = ANY(%s)", (anchors,))
    findings = []
    if found != len(anchors):
        findings.append(Finding(
            "search", "stepsync.search_anchors",
            f"stepsync.search_anchors lacks the rows through which search reaches {len(anchors) - found} of"
            f" the {len(anchors)} nodes that hold the library: search goes through the distributed tables"
            " there (the same rows, slower): run SELECT stepsync.refresh_search_statistics() as the"
            " tables' owner", {"nodes": len(anchors), "reached": found}))
    row = conn.execute("SELECT z.anchors FROM stepsync.search_sample_size AS z").fetchone()
    kept = list(row[0] or []) if row is not None else None
    if kept is not None and anchors and kept != list(anchors):
        findings.append(Finding(
            "search", "stepsync.search_sample_size",
            ("the anchors kept in stepsync.search_sample_size no longer reach each node that holds the library"
             " once (a shard moved or split, or a node added, since they were kept): every search finds them"
             " again and walks twice" if kept else
             "no anchors are kept in stepsync.search_sample_size: every search finds them first")
            + " (the same rows, slower): run SELECT stepsync.refresh_search_statistics() as the tables' owner",
            {"kept": [str(k) for k in kept], "anchors": [str(a) for a in anchors]}))
    return findings


def collect(conn: psycopg.Connection[Any], exact_conn: psycopg.Connection[Any] | None = None) -> dict[str, Any]:
    """Every check; returns {"findings": [...], "checks": [...], "method": ...}."""
    conn.execute("SET default_transaction_read_only = on")
    findings: list[Finding] = []
    checks: list[str] = []

    def attempt(name: str, what: str, fn: Callable[..., list[Finding]], *args: Any) -> None:
        checks.append(name)
        try:
            findings.extend(fn(*args))
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            message = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
            findings.append(Finding(name, what, f"could not check {what}: {message} [{exc.sqlstate}]:"
                                    " run doctor as a role that can read it (the tables' owner)"))

    checks.append("installed")
    try:
        info = revision_info(conn)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        message = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
        findings.append(Finding("installed", "public.stepsync_version",
                                f"could not read the installed revision: {message} [{exc.sqlstate}]:"
                                " run doctor as a role that can read it (the tables' owner)"))
        info = {"revision": "unknown", "head_revision": "unknown", "install_mode": None}
    if info["revision"] is None:
        findings.append(Finding("installed", conn.info.dbname,
                                f"stepsync is not installed in database {conn.info.dbname}:"
                                " run `stepsync install` (or `stepsync migrate` for a new database)"))
        return {"findings": [f.as_json() for f in findings], "checks": checks, "method": None, **info}
    attempt("revision", "the revision", _check_revision, conn, info)
    attempt("triggers", "stepsync's triggers", _check_triggers, conn)
    method = None
    if info["head_revision"] is None or info["revision"] == info["head_revision"]:
        if exact_conn is not None:
            method = "exact"
            checks.append("definitions")
            findings.extend(compare_exact(exact_conn))
        else:
            method = "read-only"
            attempt("definitions", "the definitions", compare_read_only, conn)
    attempt("ownership", "the owners", _check_ownership, conn)
    attempt("replication", "the subscriptions", _check_replication, conn)
    attempt("backfill", "the backfill", _check_backfill, conn)
    attempt("row_security", "row-level security", _check_row_security, conn)
    attempt("library", "the library", _check_library, conn)
    attempt("flows", "the flows", _check_flows, conn)
    if is_citus(conn):
        attempt("search", "the search's anchors", _check_search_anchors, conn)
    return {"findings": [f.as_json() for f in findings], "checks": checks, "method": method, **info}


def render(report: dict[str, Any]) -> None:
    """Print the findings, one line each, and a summary line."""
    for finding in report["findings"]:
        click.echo(f"{finding['check']}: {finding['message']}")
    checks = ", ".join(report["checks"])
    method = f"; definitions compared {report['method']}" if report.get("method") else ""
    if report["findings"]:
        click.echo(f"{len(report['findings'])} findings (checked {checks}{method})")
    else:
        click.echo(f"no findings (checked {checks}{method})")


def run(url: str, exact: bool, as_json: bool) -> int:
    """`stepsync doctor [--exact] [--json]`: every check, printed; the exit status (1 when there is a finding)."""
    with database.connect(url, autocommit=True) as conn:
        if exact:
            with database.connect(url, autocommit=True) as exact_conn:
                report = collect(conn, exact_conn)
        else:
            report = collect(conn)
    if as_json:
        emit_json(report)
    else:
        render(report)
    return 1 if report["findings"] else 0
