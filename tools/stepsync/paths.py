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
FUNCTIONS_DIR = DB_DIR / "functions"
TABLES_DIR = DB_DIR / "tables"
EXAMPLES_DIR = _dir("stepsync.examples")
