"""The drift gate: `upgrade head` must leave exactly what db/functions/ defines.

db/ (functions, triggers, views, types) is the readable source of truth; revisions install frozen copies.
This test migrates a fresh database, snapshots every function of schema
stepsync, every trigger and every view as PostgreSQL prints them back, then
applies every file of db/functions/ on top (inside a transaction that is rolled
back) and snapshots again. Any difference means a revision installs something
other than db/functions/ says (or a file was edited without a revision that
installs it). It also checks that every object has its file and every file
defines an installed object.
"""

from __future__ import annotations

import difflib
import re

from catalog import definitions
from stepsync.paths import TYPES_DIR, object_files


def expected_file(key: str) -> str:
    """The file (in db/functions, db/triggers, db/views or db/types) that must define the object named by a
    `definitions` key."""
    kind, _, rest = key.partition(" ")
    if kind == "function":
        return rest.split("(")[0].removeprefix("stepsync.") + ".sql"
    if kind == "trigger":
        name, _, table = rest.partition(" on ")
        return f"{table.removeprefix('public.')}__{name}.sql"
    return rest.split(".")[-1] + ".sql"


def test_every_file_is_one_installed_object_and_every_object_has_its_file(db):
    installed = {expected_file(key) for key in definitions(db.conn)}
    files = {path.name for path in object_files() if path.parent != TYPES_DIR}
    assert installed - files == set(), "objects without a file in db/ (functions, triggers, views)"
    assert files - installed == set(), "files in db/ that upgrade head does not install"
    types = {path.stem for path in TYPES_DIR.glob("*.sql")}
    assert types and {t for t in types if db.value("SELECT to_regtype(%s)", (f"stepsync.{t}",)) is None} == set()


def test_upgrade_head_matches_db_functions(db):
    files = {path: path.read_text(encoding="utf-8") for path in object_files()}
    # Views are created with plain CREATE VIEW (see step_library_entries.sql): drop and re-create
    # them first; what depends on them is re-created from its own file below.
    views = {path: re.search(r"^CREATE VIEW (\S+)", text, re.M) for path, text in files.items()}
    with db.connect(autocommit=False) as conn:
        migrated = definitions(conn)
        for path, match in views.items():
            if match:
                conn.execute(f"DROP VIEW {match.group(1)} CASCADE")
                conn.execute(files[path])
        for path, text in files.items():
            if not views[path]:
                conn.execute(text)
        from_files = definitions(conn)
        conn.rollback()
    diffs = []
    for key in sorted(set(migrated) | set(from_files)):
        old, new = migrated.get(key, "<absent>"), from_files.get(key, "<absent>")
        if old != new:
            diffs.append("".join(difflib.unified_diff(
                old.splitlines(True), new.splitlines(True), f"migrated {key}", f"db/functions {key}")))
    assert diffs == [], "upgrade head differs from db/functions/:\n" + "\n".join(diffs)


TABLE_ORDER = ("accounts", "users", "trees", "step_library")   # foreign keys point backwards only


def _tables_part(snapshot: dict[str, str]) -> dict[str, str]:
    """The table-level entries of a schema snapshot: tables, columns, constraints, indexes."""
    return {key: value for key, value in snapshot.items()
            if key.split(" ", 1)[0] in ("table", "column", "constraint", "index")
            and not key.startswith(("table public.step_library_entries", "column public.step_library_entries"))}


def test_db_tables_are_the_tables_at_head(db, empty_db):
    """db/tables/ (the readable source of each table) builds exactly the tables `upgrade head` leaves."""
    from catalog import schema_snapshot
    from stepsync.paths import INSTALL_DIR, TABLES_DIR

    assert sorted(p.stem for p in TABLES_DIR.glob("*.sql")) == sorted(TABLE_ORDER)
    with empty_db.connect() as conn:
        for name in TABLE_ORDER:
            conn.execute((TABLES_DIR / f"{name}.sql").read_text(encoding="utf-8"))
        # stepsync's own bookkeeping tables live in its schema and are created by the install itself.
        conn.execute("CREATE SCHEMA stepsync")
        for name in ("backfill_progress.sql", "row_security_setting.sql"):
            conn.execute((INSTALL_DIR / name).read_text(encoding="utf-8"))
        from_files = _tables_part(schema_snapshot(conn))
    with db.connect() as conn:
        migrated = _tables_part(schema_snapshot(conn))
    diffs = [f"{key}:\n  migrated:   {migrated.get(key, '<absent>')}\n  db/tables/: {from_files.get(key, '<absent>')}"
             for key in sorted(set(migrated) | set(from_files)) if migrated.get(key) != from_files.get(key)]
    assert diffs == [], "db/tables/ differs from what upgrade head leaves:\n" + "\n".join(diffs)
