"""Snapshots of what the migrations leave in a database, for exact comparisons.

`schema_snapshot` covers the public tables (columns, constraints, indexes,
comments, grants) and everything of ours (schema stepsync, triggers, views);
`definitions` covers what db/functions/ owns: functions, triggers and views,
as PostgreSQL prints them back.
"""

from __future__ import annotations

import psycopg

OUR_TABLES = ("accounts", "users", "trees", "step_library")

DEFINITIONS_SQL = """
SELECT 'function ' || p.oid::regprocedure::text,
       pg_catalog.pg_get_functiondef(p.oid)
       || E'\\n-- comment: ' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '<none>')
       || E'\\n-- acl: ' || coalesce(p.proacl::text, '<default>')
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'stepsync')
UNION ALL
SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text,
       pg_catalog.pg_get_triggerdef(t.oid)
       || E'\\n-- enabled: ' || t.tgenabled::text
       || E'\\n-- comment: ' || coalesce(pg_catalog.obj_description(t.oid, 'pg_trigger'), '<none>')
  FROM pg_catalog.pg_trigger t
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'view ' || c.oid::regclass::text,
       pg_catalog.pg_get_viewdef(c.oid)
       || E'\\n-- comment: ' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '<none>')
       || E'\\n-- acl: ' || coalesce(c.relacl::text, '<default>')
       || E'\\n-- columns: ' || coalesce((
              SELECT string_agg(a.attname || '=' || coalesce(pg_catalog.col_description(c.oid, a.attnum), '<none>'),
                                ', ' ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
  FROM pg_catalog.pg_class c
 WHERE c.relkind IN ('v', 'm')
   AND c.relnamespace IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('public', 'stepsync'))
"""

SCHEMA_SQL = """
SELECT 'table ' || c.oid::regclass::text || ' ' || c.relkind::text,
       coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '<none>')
       || ' acl=' || coalesce(c.relacl::text, '<default>')
       || ' options=' || coalesce(c.reloptions::text, '<none>')
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('public', 'stepsync'))
   AND c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f')
   AND c.relname NOT IN ('alembic_version', 'alembic_version_pkc', 'stepsync_version', 'stepsync_version_pkc')
UNION ALL
SELECT 'column ' || a.attrelid::regclass::text || '.' || a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
       || ' -- ' || coalesce(pg_catalog.col_description(a.attrelid, a.attnum), '<none>')
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('public', 'stepsync'))
   AND c.relkind IN ('r', 'v', 'm')
   AND c.relname NOT IN ('alembic_version', 'alembic_version_pkc', 'stepsync_version', 'stepsync_version_pkc')
   AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || con.conrelid::regclass::text || '.' || con.conname,
       pg_catalog.pg_get_constraintdef(con.oid)
  FROM pg_catalog.pg_constraint con
 WHERE con.connamespace IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('public', 'stepsync'))
   AND con.conrelid <> 0
   AND (SELECT r.relname FROM pg_catalog.pg_class r WHERE r.oid = con.conrelid)
       NOT IN ('alembic_version', 'stepsync_version')
UNION ALL
SELECT 'index ' || i.indexrelid::regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid)
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
 WHERE c.relnamespace IN (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname IN ('public', 'stepsync'))
   AND c.relname NOT IN ('alembic_version', 'alembic_version_pkc', 'stepsync_version', 'stepsync_version_pkc')
UNION ALL
SELECT 'schema ' || n.nspname,
       coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '<none>')
       || ' acl=' || coalesce(n.nspacl::text, '<default>')
  FROM pg_catalog.pg_namespace n
 WHERE n.nspname = 'stepsync'
"""


def _query(conn: psycopg.Connection, sql: str) -> dict[str, str]:
    """Run SQL with an empty search_path, so that every name prints schema-qualified."""
    saved = conn.execute("SELECT current_setting('search_path')").fetchone()[0]
    conn.execute("SELECT set_config('search_path', 'pg_catalog', false)")
    try:
        return dict(conn.execute(sql).fetchall())
    finally:
        conn.execute("SELECT set_config('search_path', %s, false)", (saved,))


def definitions(conn: psycopg.Connection) -> dict[str, str]:
    """Every function of schema stepsync, every user trigger, every view: name -> definition."""
    return _query(conn, DEFINITIONS_SQL)


def schema_snapshot(conn: psycopg.Connection) -> dict[str, str]:
    """Tables, columns, constraints, indexes, comments, schema stepsync, plus `definitions`."""
    snapshot = _query(conn, SCHEMA_SQL)
    snapshot.update(definitions(conn))
    return snapshot
