"""Where stepsync's non-Python parts are: package data, found through importlib.resources.

The wheel carries db/ as `stepsync.db` and tools/examples/ as
`stepsync.examples` (see pyproject.toml); an editable install maps the same
names onto the checkout. Nothing here is relative to a checkout, so an
installed wheel run from any directory finds the same files.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _dir(package: str) -> Path:
    # setuptools installs package data as plain files (the wheel is never imported zipped),
    # so the resource is a directory on disk that alembic can be pointed at.
    return Path(str(files(package)))


DB_DIR = _dir("stepsync.db")
MIGRATIONS_DIR = DB_DIR / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
FROZEN_SQL_DIR = MIGRATIONS_DIR / "sql"
# db/ by kind, one object a file named after it: the current source of every object stepsync installs.
TABLES_DIR = DB_DIR / "tables"
TYPES_DIR = DB_DIR / "types"
VIEWS_DIR = DB_DIR / "views"
FUNCTIONS_DIR = DB_DIR / "functions"
TRIGGERS_DIR = DB_DIR / "triggers"
INSTALL_DIR = DB_DIR / "install"   # the install's own steps (preflight, columns, backfill, uninstall...)
OBJECT_DIRS = (TYPES_DIR, VIEWS_DIR, FUNCTIONS_DIR, TRIGGERS_DIR)
CITUS_DIR = DB_DIR / "citus"   # the distributed variant: the objects that differ on Citus (docs/contract.md §11)
EXAMPLES_DIR = _dir("stepsync.examples")


def object_files() -> list[Path]:
    """The source file of every type, view, function and trigger stepsync installs, sorted by file name."""
    return sorted((path for folder in OBJECT_DIRS for path in folder.glob("*.sql")), key=lambda path: path.name)


def citus_object_files() -> list[Path]:
    """The source of every object stepsync installs on a Citus coordinator: its distributed variant
    (db/citus/functions, db/citus/views) where it has one, else the one-node file; sorted by file name."""
    variants = {p.name: p for kind in ("functions", "views") for p in (CITUS_DIR / kind).glob("*.sql")}
    files = {p.name: variants.get(p.name, p) for p in object_files()}
    return sorted({**files, **variants}.values(), key=lambda path: path.name)


def object_file(name: str) -> Path | None:
    """The source file called NAME (for example "preview.sql") in whichever folder of its kind it is."""
    return next((folder / name for folder in OBJECT_DIRS if (folder / name).is_file()), None)
