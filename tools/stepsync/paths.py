"""Where the repository's non-Python parts live, found relative to this package.

stepsync is installed editable (`pip install -e .`), so the package sits in
tools/stepsync of a checkout and the SQL, migrations and examples beside it.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
ALEMBIC_INI = REPO_ROOT / "alembic.ini"
MIGRATIONS_DIR = REPO_ROOT / "db" / "migrations"
FROZEN_SQL_DIR = MIGRATIONS_DIR / "sql"
FUNCTIONS_DIR = REPO_ROOT / "db" / "functions"
EXAMPLES_DIR = REPO_ROOT / "tools" / "examples"
