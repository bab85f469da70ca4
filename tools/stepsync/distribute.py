"""`stepsync distribute`: an application's tables on a Citus coordinator laid out as docs/contract.md
§11.1, keeping every row, then stepsync installed (§11.2).

§11.1: `accounts` and `users` reference tables; `trees` distributed by `id`; `step_library`
distributed by `tree_key uuid NOT NULL DEFAULT gen_random_uuid()`, co-located with `trees`, primary
key `(tree_key, id)`, the sync's unique key `step_library_source_key (tree_key, source_node_id)`. A
synced entry's `tree_key` is its flow's id, so that the sync of a flow reads and writes one shard
(docs/scaling.md §2.1); hand-made rows, forks and entries whose flow is gone get a random one, which
spreads them over the shards.

`layout_statements` says how to get there from what the catalogs show now: the statements, in order,
and only those still needed, so that a run cut off half-way is finished by the next. `stepsync
install`'s refusal on a coordinator prints them; `distribute` runs them:

  1. `tree_key` added and filled in one rewrite (`ALTER COLUMN ... TYPE uuid USING`, not an UPDATE:
     an UPDATE would fire the application's triggers, an `updated_at` one say, and Citus refuses a
     volatile function in an UPDATE of a table it already manages, 0A000), then NOT NULL and the
     default;
  2. the foreign keys Citus refuses dropped: any key referencing `step_library` (a key needs the
     referenced columns unique, and `id` alone no longer is; a fork and its original live on
     different shards) and a key from `step_library` to `trees` other than on `tree_key` (the
     single-node `ON DELETE SET NULL` key on `source_tree_id`: the distributed variant does its work
     in a trigger);
  3. the primary key and the sync's unique key given `tree_key` (Citus requires the distribution
     column in every unique key). Each ADD CONSTRAINT is a statement of its own: Citus refuses one
     with other subcommands on a table it manages (0A000);
  4. `create_reference_table` for `accounts` and `users` (Citus then adds the other tables, which
     reference them, to its metadata as local tables), `create_distributed_table` for `trees` and
     for `step_library` co-located with it. `create_distributed_table_concurrently`, which lets the
     application write while the rows are copied, when the coordinator can run it.

What Citus would refuse, or do silently, that no statement here can settle is refused up front,
changing nothing (`LayoutRefused`): a table of the four missing or laid out otherwise by Citus,
another unique key without the distribution column, a foreign key between these tables and others
that Citus refuses, triggers while `citus.enable_unsafe_triggers` is off, and functions that use the
row type of a table Citus will convert (Citus re-points them to a shard's row type, then drops them
with that shard, without an error: measured on Citus 13.2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql as pgsql

from stepsync import database
from stepsync.database import StepsyncError, one_row, scalar

CONTRACT = "docs/contract.md §11.1"
REFERENCE_TABLES = ("accounts", "users")
TABLES = (*REFERENCE_TABLES, "trees", "step_library")
SOURCE_KEY = "step_library_source_key"

# Column types whose text depends on the session (TimeZone, DateStyle, IntervalStyle): the checksum
# reads them as epochs, because a worker prints them with its own settings, not the client's.
_TIME_TYPES = "ARRAY['timestamptz', 'timestamp', 'date', 'time', 'timetz', 'interval']::pg_catalog.regtype[]"


class LayoutRefused(StepsyncError):
    """The tables cannot be laid out by statements alone; `problems` lists (object, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s) stop the tables from being laid out as {CONTRACT};"
                         " nothing was changed")
        self.problems = problems


@dataclass(frozen=True)
class Table:
    """One of the four tables as the catalogs show it now."""

    name: str
    oid: int
    kind: str | None            # citus_tables.citus_table_type: None for a table Citus does not manage
    column: str | None          # the distribution column of a distributed table
    colocation: int | None

    @property
    def qualified(self) -> str:
        return f"public.{self.name}"


@dataclass(frozen=True)
class Plan:
    """What lays the tables out: DDL (one transaction), then Citus's calls (one at a time, each its own
    transaction: create_distributed_table_concurrently refuses a transaction block)."""

    ddl: list[str]
    calls: list[str]
    converted: list[str]        # the tables the calls hand to Citus, in order
    blocking: str | None        # why a table is distributed with create_distributed_table, if one is

    @property
    def statements(self) -> list[str]:
        return [*self.ddl, *self.calls]


def citus_version(conn: psycopg.Connection[Any]) -> str | None:
    """The citus extension's version in CONN's database, None without it."""
    version = scalar(conn, "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'")
    return None if version is None else str(version)


def refuse_unless_coordinator(conn: psycopg.Connection[Any], command: str) -> None:
    """A one-line StepsyncError unless CONN is on the coordinator of a Citus cluster: tables are laid
    out, and DDL runs, there only (a worker, or a database whose nodes were never added, says no to
    citus_is_coordinator())."""
    version = citus_version(conn)
    name = conn.info.dbname
    if version is None:
        raise StepsyncError(f"database {name}: has no citus extension: stepsync {command} lays out the tables"
                            f" of a Citus coordinator ({CONTRACT}); on one PostgreSQL server run stepsync install")
    if not scalar(conn, "SELECT pg_catalog.citus_is_coordinator()"):
        raise StepsyncError(f"database {name}: is not the coordinator of a Citus cluster (citus {version};"
                            f" citus_is_coordinator() is false): run stepsync {command} on the coordinator, once"
                            " its workers are added (citus_add_node)")


def _tables(conn: psycopg.Connection[Any]) -> dict[str, Table]:
    rows = conn.execute(
        "SELECT c.relname::text, c.oid::int8, t.citus_table_type::text, t.distribution_column::text,"
        "       t.colocation_id"
        "  FROM pg_catalog.pg_class AS c LEFT JOIN public.citus_tables AS t ON t.table_name = c.oid"
        " WHERE c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p')"
        "   AND c.relname = ANY(%s)", (list(TABLES),)).fetchall()
    return {r[0]: Table(r[0], r[1], r[2], None if r[3] == "<none>" else r[3], r[4]) for r in rows}


def _laid_out(table: Table, tables: dict[str, Table]) -> bool:
    if table.name in REFERENCE_TABLES:
        return table.kind == "reference"
    if table.name == "trees":
        return table.kind == "distributed" and table.column == "id"
    trees = tables["trees"]
    return (table.kind == "distributed" and table.column == "tree_key"
            and _laid_out(trees, tables) and table.colocation == trees.colocation)


def _citus_problems(tables: dict[str, Table]) -> list[tuple[str, str]]:
    """Tables Citus already manages otherwise than §11.1 asks, which statements here cannot change
    (undistribute_table first)."""
    wanted = {"accounts": "a reference table", "users": "a reference table", "trees": "distributed by id",
              "step_library": "distributed by tree_key, co-located with trees"}
    problems = []
    for table in tables.values():
        if table.kind in (None, "local") or _laid_out(table, tables):
            continue
        now = f"distributed by {table.column}" if table.kind == "distributed" else f"a {table.kind} table"
        problems.append((f"table {table.qualified}",
                         f"is {now} (co-location group {table.colocation}); {CONTRACT} lays it out as"
                         f" {wanted[table.name]}: SELECT undistribute_table('{table.qualified}') first"))
    return problems


def _columns(conn: psycopg.Connection[Any], table: Table) -> dict[str, tuple[str, bool, bool]]:
    """name -> (type, NOT NULL, has a default)."""
    rows = conn.execute("SELECT attname::text, atttypid::regtype::text, attnotnull, atthasdef"
                        "  FROM pg_catalog.pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                        (table.oid,)).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@dataclass(frozen=True)
class _Unique:
    """A unique index (or the primary key, or an exclusion constraint) and the constraint it backs."""

    index: str                  # schema-qualified, quoted as SQL needs it
    constraint: str | None      # quoted as SQL needs it
    primary: bool
    columns: frozenset[str]     # the plain columns it is on ('' for an expression)
    plain: bool                 # on columns only, without a predicate


def _uniques(conn: psycopg.Connection[Any], table: Table) -> list[_Unique]:
    rows = conn.execute(
        "SELECT pg_catalog.format('%%I.%%I', n.nspname, x.relname), pg_catalog.quote_ident(c.conname),"
        "       i.indisprimary,"
        "       ARRAY(SELECT COALESCE(a.attname::text, '') FROM pg_catalog.unnest(i.indkey::int2[]) AS k"
        "               LEFT JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k),"
        "       i.indexprs IS NULL AND i.indpred IS NULL"
        "  FROM pg_catalog.pg_index AS i JOIN pg_catalog.pg_class AS x ON x.oid = i.indexrelid"
        "  JOIN pg_catalog.pg_namespace AS n ON n.oid = x.relnamespace"
        "  LEFT JOIN pg_catalog.pg_constraint AS c ON c.conindid = i.indexrelid"
        "   AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')"
        " WHERE i.indrelid = %s AND (i.indisunique OR i.indisexclusion) ORDER BY 1", (table.oid,)).fetchall()
    return [_Unique(r[0], r[1], r[2], frozenset(r[3]), r[4]) for r in rows]


def _foreign_keys(conn: psycopg.Connection[Any], tables: dict[str, Table]) -> list[tuple[Any, ...]]:
    """Every foreign key from or to trees and step_library: (table's oid, table, name, referenced table's
    oid, referenced table, columns, referenced columns, ON DELETE action, referenced table's Citus kind);
    names schema-qualified and quoted as SQL needs them."""
    return conn.execute(
        "SELECT c.conrelid::int8, pg_catalog.format('%%I.%%I', n.nspname, r.relname),"
        "       pg_catalog.quote_ident(c.conname),"
        "       c.confrelid::int8, c.confrelid::regclass::text,"
        "       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.conkey) WITH ORDINALITY AS k (n, o)"
        "               JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),"
        "       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(c.confkey) WITH ORDINALITY AS k (n, o)"
        "               JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o),"
        "       c.confdeltype::text, t.citus_table_type::text"
        "  FROM pg_catalog.pg_constraint AS c JOIN pg_catalog.pg_class AS r ON r.oid = c.conrelid"
        "  JOIN pg_catalog.pg_namespace AS n ON n.oid = r.relnamespace"
        "  LEFT JOIN public.citus_tables AS t ON t.table_name = c.confrelid"
        " WHERE c.contype = 'f' AND (c.conrelid = ANY(%(oids)s) OR c.confrelid = ANY(%(oids)s)) ORDER BY 2, 3",
        {"oids": [tables["trees"].oid, tables["step_library"].oid]}).fetchall()


def _row_type_users(conn: psycopg.Connection[Any], moved: list[int], oids: list[int]) -> list[tuple[str, str]]:
    """Objects outside schema stepsync (functions, mostly) that use the row type of a table of MOVED, or
    of a view over a table of OIDS: (object, table or view)."""
    return [(str(o), str(t)) for o, t in conn.execute(
        "WITH typed AS ("
        "  SELECT c.oid, c.reltype FROM pg_catalog.pg_class AS c WHERE c.oid = ANY(%(moved)s)"
        "  UNION"
        "  SELECT r.ev_class, v.reltype FROM pg_catalog.pg_depend AS d"
        "    JOIN pg_catalog.pg_rewrite AS r ON r.oid = d.objid JOIN pg_catalog.pg_class AS v ON v.oid = r.ev_class"
        "   WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass"
        "     AND d.refobjid = ANY(%(oids)s) AND r.ev_class <> ALL(%(oids)s))"
        "SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), t.oid::regclass::text"
        "  FROM pg_catalog.pg_depend AS d JOIN typed AS t ON d.refobjid = t.reltype"
        " WHERE d.refclassid = 'pg_catalog.pg_type'::regclass AND d.deptype = 'n'"
        "   AND NOT (d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid IN ("
        "            SELECT p.oid FROM pg_catalog.pg_proc AS p"
        "             WHERE p.pronamespace = pg_catalog.to_regnamespace('stepsync')))"
        " ORDER BY 1, 2", {"moved": moved, "oids": oids}).fetchall()]


def _triggers(conn: psycopg.Connection[Any], oids: list[int]) -> list[tuple[str, str]]:
    """The application's triggers on these tables (stepsync's go with the single-node uninstall)."""
    return [(str(t), str(n)) for t, n in conn.execute(
        "SELECT tg.tgrelid::regclass::text, tg.tgname::text FROM pg_catalog.pg_trigger AS tg"
        "  JOIN pg_catalog.pg_proc AS p ON p.oid = tg.tgfoid"
        " WHERE tg.tgrelid = ANY(%s) AND NOT tg.tgisinternal"
        "   AND p.pronamespace IS DISTINCT FROM pg_catalog.to_regnamespace('stepsync') ORDER BY 1, 2",
        (oids,)).fetchall()]


def concurrent_refusal(conn: psycopg.Connection[Any]) -> str | None:
    """Why create_distributed_table_concurrently cannot run on this coordinator, None when it can.

    It copies the rows through logical replication from the coordinator, which needs wal_level =
    logical there and, from PostgreSQL 15.19 on, `citus` among output_plugin_libraries (without it the
    call fails, XX000 'library "citus" may not be used as an output plugin', changing nothing).
    """
    if not scalar(conn, "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc"
                        " WHERE proname = 'create_distributed_table_concurrently')"):
        return "this Citus has no create_distributed_table_concurrently (Citus 11.1 and later have it)"
    wal_level = scalar(conn, "SELECT pg_catalog.current_setting('wal_level')")
    if wal_level != "logical":
        return f"wal_level is {wal_level} on the coordinator, and it needs logical"
    plugins = scalar(conn, "SELECT pg_catalog.current_setting('output_plugin_libraries', true)")
    if plugins is not None and "citus" not in [p.strip().strip('"') for p in str(plugins).split(",")]:
        return (f"output_plugin_libraries ({plugins}) does not list citus, which it uses as a logical decoding"
                " output plugin")
    return None


def _tree_key(columns: dict[str, tuple[str, bool, bool]], library: Table) -> list[str]:
    """Statements that give step_library its tree_key, filled, NOT NULL, with a default."""
    key = columns.get("tree_key")
    if key is None and "source_tree_id" not in columns:
        # Nothing to fill from: the default's rewrite gives each row its own random key.
        return ["ALTER TABLE public.step_library ADD COLUMN tree_key uuid NOT NULL DEFAULT gen_random_uuid();"]
    statements = []
    if key is None:
        statements.append("ALTER TABLE public.step_library ADD COLUMN tree_key uuid;")
    nullable = key is None or not key[1]
    changes = []
    # A distribution column holds no NULL already, and Citus refuses to rewrite it: a distributed
    # step_library needs NOT NULL at most.
    if nullable and library.kind != "distributed":
        sources = [c for c in ("tree_key", "source_tree_id") if c in columns]
        changes.append(f"ALTER COLUMN tree_key TYPE uuid USING COALESCE({', '.join(sources)}, gen_random_uuid())")
    if key is None or not key[2]:
        changes.append("ALTER COLUMN tree_key SET DEFAULT gen_random_uuid()")
    if nullable:
        changes.append("ALTER COLUMN tree_key SET NOT NULL")
    if changes:
        statements.append(f"ALTER TABLE public.step_library {', '.join(changes)};")
    return statements


def _keys(conn: psycopg.Connection[Any], tables: dict[str, Table],
          has_source_node: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """Statements that put the distribution column in step_library's primary key and the sync's unique
    key, and the unique keys they cannot change (problems)."""
    lib = "ALTER TABLE public.step_library"
    statements = []
    problems = []
    primary = None
    has_source_key = False
    for unique in _uniques(conn, tables["step_library"]):
        if unique.primary:
            primary = unique
        elif unique.plain and unique.columns == {"source_tree_id", "source_node_id"}:
            statements.append(f"{lib} DROP CONSTRAINT {unique.constraint};" if unique.constraint
                              else f"DROP INDEX {unique.index};")
        elif "tree_key" in unique.columns:
            has_source_key |= unique.plain and unique.columns == {"tree_key", "source_node_id"}
        else:
            problems.append(_unique_problem(unique, tables["step_library"], "tree_key"))
    if primary is None or primary.columns != {"tree_key", "id"}:
        name = primary.constraint if primary is not None and primary.constraint else "step_library_pkey"
        if primary is not None:
            statements.append(f"{lib} DROP CONSTRAINT {name};")
        statements.append(f"{lib} ADD CONSTRAINT {name} PRIMARY KEY (tree_key, id);")
    if has_source_node and not has_source_key:
        statements.append(f"{lib} ADD CONSTRAINT {SOURCE_KEY} UNIQUE (tree_key, source_node_id);")
    problems += [_unique_problem(u, tables["trees"], "id") for u in _uniques(conn, tables["trees"])
                 if "id" not in u.columns]
    return statements, problems


def _unique_problem(unique: _Unique, table: Table, column: str) -> tuple[str, str]:
    what = "primary key" if unique.primary else "unique key" if unique.constraint else "unique index"
    return (f"{what} {unique.constraint or unique.index} on {table.qualified}",
            f"does not include {column}, the distribution column {CONTRACT} gives the table, and Citus refuses"
            f" such a key (0A000): drop it, or add {column} to it, first")


def _foreign_key_changes(conn: psycopg.Connection[Any],
                         tables: dict[str, Table]) -> tuple[list[str], list[tuple[str, str]]]:
    """Statements that drop the foreign keys Citus refuses and §11.2 does without, and the foreign keys
    that no statement here may drop (problems): the application's own, which Citus refuses too."""
    library, trees = tables["step_library"].oid, tables["trees"].oid
    reference = {tables[n].oid for n in REFERENCE_TABLES}
    statements = []
    problems = []
    for source, source_sql, name, target, target_text, cols, target_cols, on_delete, target_kind in \
            _foreign_keys(conn, tables):
        on_tree_key = (cols, target_cols) == (["tree_key"], ["id"]) and on_delete not in ("n", "d")
        if target == library or (source == library and target == trees and not on_tree_key):
            statements.append(f"ALTER TABLE {source_sql} DROP CONSTRAINT {name};")
        elif (source, target) != (library, trees) and not (
                source in (library, trees) and (target in reference or target_kind == "reference")):
            problems.append((f"foreign key {name} on {source_sql}",
                             f"references {target_text} ({', '.join(target_cols)}), and Citus refuses it once"
                             " trees and step_library are distributed (a key between distributed tables must be"
                             " on their distribution columns; other tables may reference reference tables only):"
                             " drop it, or make the other table a reference table, first"))
    return statements, problems


def plan(conn: psycopg.Connection[Any], shard_count: int | None = None) -> Plan:
    """The statements that lay the four tables out as §11.1 (see the module's docstring); raises
    LayoutRefused for what statements cannot settle. Reads the catalogs only. SHARD_COUNT: the shards of
    trees (and so of step_library, co-located with it); None for Citus's citus.shard_count."""
    tables = _tables(conn)
    missing = [name for name in TABLES if name not in tables]
    if missing:
        raise LayoutRefused([(f"table public.{name}", f"is missing: {CONTRACT} lays out accounts, users, trees"
                               " and step_library (stepsync migrate creates them in a new database)")
                              for name in missing])
    problems = _citus_problems(tables)
    trees, library = tables["trees"], tables["step_library"]
    tree_id = _columns(conn, trees)["id"][0]
    if tree_id != "uuid":
        problems.append(("column public.trees.id", f"is {tree_id}; {CONTRACT} has it uuid, the type of"
                         " step_library.tree_key, which shares its shards"))
    columns = _columns(conn, library)
    if "tree_key" in columns and columns["tree_key"][0] != "uuid":
        problems.append(("column public.step_library.tree_key",
                         f"is {columns['tree_key'][0]}; {CONTRACT} has it uuid NOT NULL"))
    dropped, refused = _foreign_key_changes(conn, tables)
    keys, unique_problems = _keys(conn, tables, "source_node_id" in columns)
    problems += refused + unique_problems
    converted = [name for name in TABLES if not _laid_out(tables[name], tables)]
    oids = [tables[name].oid for name in converted]
    # The first table handed to Citus, a local table, is converted in place; the others are turned into
    # Citus local tables first, through their foreign keys to it, and their row type then belongs to a
    # shard: a function of it is re-pointed there, then dropped with that shard, without an error. A view
    # over any of them is made again, which a function of the view's row type stops (2BP01).
    moved = oids[1:] if converted and tables[converted[0]].kind is None else oids
    problems += [(obj, f"uses the row type of {table}, which Citus cannot keep while it takes the tables over"
                  " (it re-points it to a shard's row type and drops it with that shard, or fails): drop it,"
                  " run stepsync distribute, then create it again")
                 for obj, table in _row_type_users(conn, moved, oids)]
    if not scalar(conn, "SELECT pg_catalog.current_setting('citus.enable_unsafe_triggers')::boolean"):
        distributed = [tables[name].oid for name in ("trees", "step_library") if name in converted]
        problems += [(f"trigger {name} on {table}", "Citus distributes a table with triggers only with"
                      f" citus.enable_unsafe_triggers = on, which {CONTRACT} asks of every node")
                     for table, name in _triggers(conn, distributed)]
    if problems:
        raise LayoutRefused(problems)

    blocking = concurrent_refusal(conn)
    distribute_with = "create_distributed_table" if blocking else "create_distributed_table_concurrently"
    calls = [f"SELECT create_reference_table('public.{name}');" for name in converted if name in REFERENCE_TABLES]
    shards = "" if shard_count is None else f", shard_count => {int(shard_count)}"
    if "trees" in converted:
        calls.append(f"SELECT {distribute_with}('public.trees', 'id'{shards});")
    if "step_library" in converted:
        calls.append(f"SELECT {distribute_with}('public.step_library', 'tree_key', colocate_with => 'public.trees');")
    distributes = "trees" in converted or "step_library" in converted
    return Plan([*_tree_key(columns, library), *dropped, *keys], calls, converted, blocking if distributes else None)


def layout_statements(conn: psycopg.Connection[Any]) -> list[str]:
    """The exact statements, in order, that lay the four tables of CONN's coordinator out as
    docs/contract.md §11.1; [] when they are laid out. Each ends with a semicolon, so that the list
    printed one a line is a psql script. Raises LayoutRefused (the problems, one line each) when
    statements alone cannot do it. Reads the catalogs only."""
    return plan(conn).statements


# --- distribute --------------------------------------------------------------------------------------


def _kept_columns(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[str, bool]]]:
    """The columns of the four tables that the layout keeps as they are (all but tree_key), and whether
    each is a date or time (see _TIME_TYPES)."""
    columns: dict[str, list[tuple[str, bool]]] = {name: [] for name in TABLES}
    for table, column, timed in conn.execute(
            "SELECT c.relname::text, a.attname::text, a.atttypid = ANY(" + _TIME_TYPES + ")"
            "  FROM pg_catalog.pg_attribute AS a JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid"
            " WHERE c.relnamespace = 'public'::pg_catalog.regnamespace AND c.relname = ANY(%s)"
            "   AND a.attnum > 0 AND NOT a.attisdropped"
            "   AND NOT (c.relname = 'step_library' AND a.attname = 'tree_key')"
            " ORDER BY c.relname, a.attnum", (list(TABLES),)).fetchall():
        columns[table].append((column, timed))
    return columns


def _fingerprints(conn: psycopg.Connection[Any],
                  columns: dict[str, list[tuple[str, bool]]]) -> dict[str, tuple[int, Decimal]]:
    """Per table, its row count and the sum of a 60-bit hash of each row's COLUMNS: the same rows give
    the same pair wherever they live. A sum, not a digest in some order, so that Citus adds up each
    shard's part on the coordinator instead of bringing every row there."""
    result = {}
    for table, cols in columns.items():
        values = pgsql.SQL(", ").join(
            pgsql.SQL("extract(epoch FROM {})").format(pgsql.Identifier(c)) if timed else pgsql.Identifier(c)
            for c, timed in cols)
        count, total = one_row(conn.execute(pgsql.SQL(
            "SELECT count(*), COALESCE(sum(('x' || substr(md5(ROW({})::text), 1, 15))::bit(60)::int8), 0)"
            "  FROM {}").format(values, pgsql.Identifier("public", table))))
        result[table] = (int(count), Decimal(total))
    return result


def _run(conn: psycopg.Connection[Any], statement: str, say: Callable[[str], None]) -> None:
    say(f"running: {statement}")
    conn.execute(statement)


def lay_out(url: str, *, say: Callable[[str], None], warn: Callable[[str], None],
            shard_count: int | None = None) -> str:
    """Lay the tables of the coordinator at URL out as docs/contract.md §11.1, keeping every row; returns
    what it did, in a line. (`stepsync distribute` first removes a single-node stepsync, whose view and
    functions over the tables would stop Citus, 2BP01, and installs the distributed variant after.)

    Every row of the four tables is counted and hashed before and after, and a difference stops it
    (a write by the application while create_distributed_table_concurrently copied the rows makes one
    too). Then the copies of the rows that Citus leaves in the coordinator's own tables are emptied,
    as Citus advises.
    """
    with database.connect(url, autocommit=True) as conn:
        refuse_unless_coordinator(conn, "distribute")
        layout = plan(conn, shard_count)
        if not layout.statements:
            return f"the tables are laid out as {CONTRACT} already"
        if layout.blocking:
            warn(f"create_distributed_table_concurrently cannot run here ({layout.blocking}): using"
                 " create_distributed_table, which holds writes to each table while it copies its rows")
        columns = _kept_columns(conn)
        before = _fingerprints(conn, columns)
        with conn.transaction():
            for statement in layout.ddl:
                _run(conn, statement, say)
        for statement in layout.calls:
            _run(conn, statement, say)
        after = _fingerprints(conn, columns)
        differ = [f"{t}: {before[t][0]} rows (checksum {before[t][1]}) before, {after[t][0]} rows"
                  f" (checksum {after[t][1]}) after" for t in TABLES if before[t] != after[t]]
        if differ:
            raise StepsyncError(f"the rows changed while the tables were laid out ({'; '.join(differ)}):"
                                " stepsync was not installed; if the application wrote to them meanwhile,"
                                " run stepsync distribute again, otherwise compare them with a backup")
        for name in layout.converted:
            _run(conn, f"SELECT truncate_local_data_after_distributing_table('public.{name}');", say)
    return (f"laid out the tables as {CONTRACT} ({len(layout.statements)} statements); kept"
            f" {before['accounts'][0]} accounts, {before['users'][0]} users, {before['trees'][0]}"
            f" flows and {before['step_library'][0]} library rows, checked by count and checksum")
