"""The SQL API reference (docs/api.md), generated from a database's own catalog.

Everything on the page comes from PostgreSQL: the COMMENTs on the schema, the
functions, the view and its columns, the tables and their columns, the
constraints, indexes, triggers and types; the signatures and trigger
definitions as PostgreSQL prints them back; and the leading comment inside
each function body (what `\\sf` shows). Point it at a database migrated to the
newest revision:

    PYTHONPATH=tools python -m stepsync_dev.apidoc --database-url postgresql://... > docs/api.md

The output is deterministic: objects are sorted by name, names are printed
schema-qualified (the query runs with search_path = pg_catalog), and nothing
depends on OIDs, the server version, the time or the database's name.
tests/test_apidoc.py renders a freshly migrated database and fails when the
committed docs/api.md differs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from stepsync import owned
from stepsync.paths import object_file

#: The command that regenerates the page, printed in its header and by the test.
REGENERATE = "PYTHONPATH=tools python -m stepsync_dev.apidoc --database-url URL > docs/api.md"

#: The application tables stepsync works on (docs/contract.md §1), then stepsync's own version table.
TABLES = ("accounts", "users", "trees", "step_library", owned.VERSION_TABLE)

#: Columns stepsync adds to the application's tables (docs/contract.md §1, §9.2), from stepsync.owned.
STEPSYNC_COLUMNS = {owned.LIBRARY_TABLE: owned.LIBRARY_COLUMNS}

#: Views of stepsync's that live outside schema stepsync (docs/contract.md §6.2).
PUBLIC_VIEWS = owned.VIEWS

Row = tuple[Any, ...]

FUNCTIONS_SQL = """
SELECT p.oid,
       p.proname,
       p.oid::regprocedure::text,
       pg_catalog.pg_get_function_result(p.oid),
       l.lanname,
       p.provolatile,
       p.prosecdef,
       pg_catalog.has_function_privilege('public', p.oid, 'EXECUTE'),
       p.proconfig,
       p.prosrc,
       pg_catalog.obj_description(p.oid, 'pg_proc'),
       p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype
  FROM pg_catalog.pg_proc AS p
  JOIN pg_catalog.pg_language AS l ON l.oid = p.prolang
 WHERE p.pronamespace = 'stepsync'::pg_catalog.regnamespace
 ORDER BY p.proname, p.oid::regprocedure::text
"""

ARGUMENTS_SQL = """
SELECT a.name, pg_catalog.format_type(a.type, NULL), a.mode,
       CASE WHEN a.mode IN ('i', 'b', 'v') THEN pg_catalog.pg_get_function_arg_default(%s, a.ord::integer) END
  FROM pg_catalog.pg_proc AS p,
       LATERAL ROWS FROM (
           pg_catalog.unnest(COALESCE(p.proallargtypes, p.proargtypes::oid[])),
           pg_catalog.unnest(COALESCE(p.proargmodes, pg_catalog.array_fill('i'::"char", ARRAY[p.pronargs::integer]))),
           pg_catalog.unnest(COALESCE(p.proargnames, pg_catalog.array_fill(''::text, ARRAY[p.pronargs::integer])))
       ) WITH ORDINALITY AS a (type, mode, name, ord)
 WHERE p.oid = %s
 ORDER BY a.ord
"""

RELATIONS_SQL = """
SELECT c.oid, c.oid::regclass::text, c.relkind, pg_catalog.obj_description(c.oid, 'pg_class')
  FROM pg_catalog.pg_class AS c
 WHERE c.relkind IN ('r', 'p', 'v', 'm')
   AND ((c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relname = ANY (%s))
        OR c.relnamespace = 'stepsync'::pg_catalog.regnamespace)
 ORDER BY c.relnamespace::regnamespace::text <> 'public', c.relname
"""

COLUMNS_SQL = """
SELECT a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       a.attnotnull,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       pg_catalog.col_description(a.attrelid, a.attnum)
  FROM pg_catalog.pg_attribute AS a
  LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

CONSTRAINTS_SQL = """
SELECT con.conname, pg_catalog.pg_get_constraintdef(con.oid), pg_catalog.obj_description(con.oid, 'pg_constraint'),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
              WHERE a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey))
  FROM pg_catalog.pg_constraint AS con
 WHERE con.conrelid = %s
   AND con.contype <> 'n'   -- NOT NULL (a constraint row from PostgreSQL 18 on): shown with the column
 ORDER BY con.conname
"""

INDEXES_SQL = """
SELECT i.indexrelid::regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid),
       pg_catalog.obj_description(i.indexrelid, 'pg_class'),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
              WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey::smallint[])),
       EXISTS (SELECT 1 FROM pg_catalog.pg_constraint AS con WHERE con.conindid = i.indexrelid)
  FROM pg_catalog.pg_index AS i
 WHERE i.indrelid = %s
 ORDER BY 1
"""

TRIGGERS_SQL = """
SELECT t.tgname, t.tgrelid::regclass::text, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled,
       pg_catalog.obj_description(t.oid, 'pg_trigger'), t.tgfoid::regproc::text
  FROM pg_catalog.pg_trigger AS t
  JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
 WHERE NOT t.tgisinternal
   AND p.pronamespace = 'stepsync'::pg_catalog.regnamespace
 ORDER BY t.tgrelid::regclass::text, t.tgname
"""

TYPES_SQL = """
SELECT t.typrelid, t.oid::regtype::text, pg_catalog.obj_description(t.oid, 'pg_type')
  FROM pg_catalog.pg_type AS t
 WHERE t.typnamespace = 'stepsync'::pg_catalog.regnamespace AND t.typtype = 'c'
   AND (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = t.typrelid) = 'c'
 ORDER BY t.typname
"""

SCHEMA_SQL = """
SELECT pg_catalog.obj_description(n.oid, 'pg_namespace'),
       pg_catalog.has_schema_privilege('public', n.oid, 'USAGE')
  FROM pg_catalog.pg_namespace AS n
 WHERE n.nspname = 'stepsync'
"""

VOLATILITY = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}
ENABLED = {"O": "enabled", "D": "disabled", "R": "enabled on replicas only (ENABLE REPLICA)",
           "A": "always enabled (ENABLE ALWAYS)"}
TRIGGER_TABLES_ORDER = {"public.trees": 0, "public.step_library": 1}


def _rows(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] | None = None) -> list[Row]:
    return conn.execute(sql, params).fetchall()


def _cell(text: object) -> str:
    """A value fit for a Markdown table cell: one line, pipes escaped."""
    if text is None:
        return ""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: object) -> str:
    """Inline code that survives backticks inside the text."""
    value = _cell(text)
    if "`" in value:
        return f"`` {value} ``"
    return f"`{value}`"


def _paragraph(comment: str | None) -> list[str]:
    if not comment:
        return ["*(no COMMENT)*", ""]
    return [" ".join(comment.split()), ""]


def _anchor(text: str) -> str:
    """GitHub's heading anchor for a heading made of TEXT (lower case, punctuation dropped)."""
    out = []
    for ch in text.strip().lower():
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


def _source_link(file_name: str) -> str | None:
    """A link from docs/ to the source file FILE_NAME (db/functions, db/triggers or db/views) when it exists."""
    path = object_file(file_name)
    if path is None:
        return None
    where = f"db/{path.parent.name}/{file_name}"
    return f"[`{where}`](../{where})"


def body_comment(source: str | None) -> list[str]:
    """The comment lines a function body starts with (what `\\sf` shows first), without the `--`."""
    lines: list[str] = []
    if not source:
        return lines
    for raw in source.splitlines():
        line = raw.strip()
        if not lines and not line:
            continue
        if not line.startswith("--"):
            break
        text = line[2:]
        lines.append(text.removeprefix(" "))
    return lines


def _function_section(conn: psycopg.Connection[Any], row: Row) -> Iterator[str]:
    (oid, name, regprocedure, result, language, volatility, secdef, public_exec, config, source,
     comment, _is_trigger) = row
    arguments = _rows(conn, ARGUMENTS_SQL, (oid, oid))
    inputs = [a for a in arguments if a[2] in ("i", "b", "v")]
    outputs = [a for a in arguments if a[2] in ("o", "b", "t")]

    yield f"### `{regprocedure}`"
    yield ""
    yield from _paragraph(comment)

    yield "```sql"
    if inputs:
        yield f"stepsync.{name}("
        for i, (arg_name, arg_type, mode, default) in enumerate(inputs):
            text = " ".join(part for part in (
                {"b": "INOUT", "v": "VARIADIC"}.get(mode, ""), arg_name, arg_type) if part)
            if default is not None:
                text += f" DEFAULT {default}"
            yield f"    {text}{',' if i < len(inputs) - 1 else ''}"
        yield ")"
    else:
        yield f"stepsync.{name}()"
    if any(a[2] == "t" for a in outputs):
        yield "RETURNS TABLE ("
        for i, (col_name, col_type, _mode, _default) in enumerate(outputs):
            yield f"    {col_name} {col_type}{',' if i < len(outputs) - 1 else ''}"
        yield ")"
    else:
        yield f"RETURNS {result}"
    yield "```"
    yield ""

    facts: list[str] = [f"Language {language}", str(VOLATILITY.get(volatility, volatility)),
             "SECURITY DEFINER (runs as its owner)" if secdef else "SECURITY INVOKER (runs as the caller)",
             "EXECUTE granted to PUBLIC" if public_exec else "EXECUTE not granted to PUBLIC"]
    settings = ", ".join(f"`{setting}`" for setting in (config or []))
    yield "- " + "; ".join(facts) + "."
    if settings:
        yield f"- Settings: {settings}."
    link = _source_link(f"{name}.sql")
    if link:
        yield f"- Source: {link}."
    yield ""

    notes = body_comment(source)
    if notes:
        yield "From the function body (`\\sf`):"
        yield ""
        yield "```text"
        yield from notes
        yield "```"
        yield ""


def _columns_table(conn: psycopg.Connection[Any], relid: int, marked: Sequence[str] = (),
                   only: Sequence[str] | None = None) -> Iterator[str]:
    rows = _rows(conn, COLUMNS_SQL, (relid,))
    if only is not None:
        rows = [r for r in rows if r[0] in only]
    if not rows:
        return
    mark = bool(marked)
    yield "| column | type | " + ("stepsync | " if mark else "") + "comment |"
    yield "|---|---|" + ("---|" if mark else "") + "---|"
    for attname, type_name, notnull, default, comment in rows:
        type_text = type_name + (" not null" if notnull else "") + (f" default {default}" if default else "")
        added = ("added | " if attname in marked else " | ") if mark else ""
        yield f"| {_code(attname)} | {_code(type_text)} | {added}{_cell(comment)} |"
    yield ""


def _table_section(conn: psycopg.Connection[Any], relid: int, qualified: str, comment: str | None) -> Iterator[str]:
    table = qualified.split(".")[-1]
    added = STEPSYNC_COLUMNS.get(table, ())
    yield f"### `{qualified}`"
    yield ""
    yield from _paragraph(comment)
    yield from _columns_table(conn, relid, marked=added)

    constraints = [c for c in _rows(conn, CONSTRAINTS_SQL, (relid,)) if set(c[3]) & set(added)]
    indexes = [i for i in _rows(conn, INDEXES_SQL, (relid,))
               if not i[4] and (set(i[3]) & set(added) or "stepsync." in i[1])]
    if constraints:
        yield "Constraints stepsync adds:"
        yield ""
        yield "| constraint | definition | comment |"
        yield "|---|---|---|"
        for conname, definition, con_comment, _columns in constraints:
            yield f"| {_code(conname)} | {_code(definition)} | {_cell(con_comment)} |"
        yield ""
    if indexes:
        yield "Indexes stepsync adds:"
        yield ""
        yield "| index | definition | comment |"
        yield "|---|---|---|"
        for index, definition, index_comment, _columns, _is_constraint in indexes:
            yield f"| {_code(index)} | {_code(definition)} | {_cell(index_comment)} |"
        yield ""


def _view_section(conn: psycopg.Connection[Any], relid: int, qualified: str, comment: str | None) -> Iterator[str]:
    yield f"### `{qualified}`"
    yield ""
    yield from _paragraph(comment)
    yield from _columns_table(conn, relid)
    link = _source_link(f"{qualified.split('.')[-1]}.sql")
    if link:
        yield f"Source: {link}."
        yield ""


def _trigger_section(row: Row) -> Iterator[str]:
    name, table, definition, enabled, comment, function = row
    yield f"### `{name}` on `{table}`"
    yield ""
    yield from _paragraph(comment)
    yield "```sql"
    yield definition
    yield "```"
    yield ""
    facts = [f"Calls [`{function}()`](#{_anchor(function + '()')})",
             f"{ENABLED.get(enabled, enabled)} in a freshly migrated database"]
    yield "- " + "; ".join(facts) + "."
    link = _source_link(f"{table.split('.')[-1]}__{name}.sql")
    if link:
        yield f"- Source: {link}."
    yield ""


def _type_section(conn: psycopg.Connection[Any], relid: int, name: str, comment: str | None) -> Iterator[str]:
    yield f"### `{name}`"
    yield ""
    yield from _paragraph(comment)
    yield from _columns_table(conn, relid)


def _render(conn: psycopg.Connection[Any]) -> Iterator[str]:
    schema = _rows(conn, SCHEMA_SQL)
    if not schema:
        raise LookupError("this database has no schema stepsync: migrate or install it first")
    schema_comment, schema_usage = schema[0]
    functions = _rows(conn, FUNCTIONS_SQL)
    public_functions = [f for f in functions if not f[11] and not f[1].startswith("_")]
    internal_functions = [f for f in functions if not f[11] and f[1].startswith("_")]
    trigger_functions = [f for f in functions if f[11]]
    relations = _rows(conn, RELATIONS_SQL, (list(TABLES) + list(PUBLIC_VIEWS),))
    tables = [r for r in relations if r[2] in ("r", "p")]
    tables.sort(key=lambda r: (not r[1].startswith("public."),
                               TABLES.index(r[1].split(".")[-1]) if r[1].startswith("public.") else 0, r[1]))
    views = [r for r in relations if r[2] in ("v", "m")]
    triggers = sorted(_rows(conn, TRIGGERS_SQL), key=lambda t: (TRIGGER_TABLES_ORDER.get(t[1], 9), t[1], t[0]))
    types = _rows(conn, TYPES_SQL)

    yield "# SQL API reference"
    yield ""
    yield ("<!-- Generated by tools/stepsync_dev/apidoc.py from the catalog of a freshly migrated database. "
           "Do not edit by hand. -->")
    yield ""
    yield ("This page is generated from the database itself: every sentence under a name is that object's "
           "`COMMENT` (what `\\df+`, `\\dv+` and `\\d+` show), the signatures and trigger definitions are "
           "PostgreSQL's own, and the text blocks are the comments a function body starts with "
           "(what `\\sf` shows). Section numbers (§) refer to [the contract](contract.md); "
           "[how it works](how-it-works.md) follows one publish through these objects.")
    yield ""
    yield ("Regenerate it after changing a COMMENT or a function, from a database at the newest revision: "
           f"`{REGENERATE}`.")
    yield "`tests/test_apidoc.py` fails while the committed page differs from what a freshly migrated database gives."
    yield ""
    sections = [("Schema `stepsync`", True), ("Functions for clients and DBAs", bool(public_functions)),
                ("The view", bool(views)), ("Tables", bool(tables)), ("Triggers", bool(triggers)),
                ("Trigger functions", bool(trigger_functions)), ("Internal functions", bool(internal_functions)),
                ("Types", bool(types))]
    yield "Contents:"
    yield ""
    for title, present in sections:
        if present:
            yield f"- [{title}](#{_anchor(title)})"
    yield ""

    yield "## Schema `stepsync`"
    yield ""
    yield from _paragraph(schema_comment)
    yield ("USAGE on the schema is granted to PUBLIC." if schema_usage
           else "USAGE on the schema is not granted to PUBLIC.")
    yield ""

    if public_functions:
        yield "## Functions for clients and DBAs"
        yield ""
        yield "| function | what it does |"
        yield "|---|---|"
        for f in public_functions:
            yield f"| [`{f[2]}`](#{_anchor(f[2])}) | {_cell(f[10])} |"
        yield ""
        for f in public_functions:
            yield from _function_section(conn, f)

    if views:
        yield "## The view"
        yield ""
        for relid, qualified, _kind, comment in views:
            yield from _view_section(conn, relid, qualified, comment)

    if tables:
        yield "## Tables"
        yield ""
        yield ("The application's tables, as the standalone migrations create them (§1); columns marked *added* "
               f"are stepsync's (§9.2 adopts or adds them). `public.{owned.VERSION_TABLE}` is stepsync's own "
               "version table.")
        yield ""
        for relid, qualified, _kind, comment in tables:
            yield from _table_section(conn, relid, qualified, comment)

    if triggers:
        yield "## Triggers"
        yield ""
        yield ("Triggers of the same kind on one table fire in name order; the `tNN_` prefixes set that order. "
               "A bulk load that disables them must be followed by `stepsync resync --all` "
               "(see [operating notes](operating.md)).")
        yield ""
        for t in triggers:
            yield from _trigger_section(t)

    if trigger_functions:
        yield "## Trigger functions"
        yield ""
        for f in trigger_functions:
            yield from _function_section(conn, f)

    if internal_functions:
        yield "## Internal functions"
        yield ""
        yield ("Not an interface: names starting with `_` may change in any release. They are listed because a "
               "DBA reads them in `\\df+` and in error contexts.")
        yield ""
        for f in internal_functions:
            yield from _function_section(conn, f)

    if types:
        yield "## Types"
        yield ""
        for relid, name, comment in types:
            yield from _type_section(conn, relid, name, comment)


def render(conn: psycopg.Connection[Any]) -> str:
    """The Markdown of docs/api.md for the database CONN is connected to.

    Reads the catalog only. Runs with search_path = pg_catalog (restored afterwards), so that every
    name prints schema-qualified whatever the session's own path is.
    """
    saved = conn.execute("SELECT pg_catalog.current_setting('search_path')").fetchone()
    conn.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)")
    try:
        text = "\n".join(_render(conn))
    finally:
        conn.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (saved[0] if saved else "",))
    return text.rstrip("\n") + "\n"


def _libpq_url(url: str) -> str:
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"not a postgresql:// URL: {scheme or url!r}")
    return f"postgresql://{rest}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stepsync_dev.apidoc",
        description="Print the SQL API reference (docs/api.md) of a database migrated to the newest revision.")
    parser.add_argument("--database-url", metavar="URL", default=os.environ.get("STEPSYNC_DATABASE_URL"),
                        help="postgresql:// URL of the database (default: $STEPSYNC_DATABASE_URL)")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url URL (or set STEPSYNC_DATABASE_URL)")
    try:
        with psycopg.connect(_libpq_url(args.database_url), autocommit=True, connect_timeout=10) as conn:
            page = render(conn)
    except (ValueError, LookupError) as exc:
        print(f"stepsync_dev.apidoc: error: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or ["database error"])[0]
        print(f"stepsync_dev.apidoc: error: {first}", file=sys.stderr)
        return 1
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
