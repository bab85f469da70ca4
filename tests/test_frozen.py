"""Landed revisions never change: each frozen directory's files match the SHA256SUMS written with it.

tools/freeze_revision.py writes the frozen copies of a revision and their
checksums; a revision that has landed is never refreshed again. An edit to a
frozen file of a landed revision (instead of a new revision) fails here.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

from repo import REPO_ROOT
from stepsync.paths import FROZEN_SQL_DIR


def frozen_directories() -> list:
    return sorted(p for p in FROZEN_SQL_DIR.iterdir() if p.is_dir())


def test_every_frozen_directory_has_its_checksums():
    assert [p.name for p in frozen_directories() if not (p / "SHA256SUMS").exists()] == []


def test_frozen_files_match_their_checksums():
    mismatches = []
    for directory in frozen_directories():
        listed = dict(line.split("  ", 1)[::-1] for line in
                      (directory / "SHA256SUMS").read_text(encoding="utf-8").splitlines())
        present = {p.name for p in directory.iterdir() if p.is_file() and p.name != "SHA256SUMS"}
        if set(listed) != present:
            mismatches.append(f"{directory.name}: files {sorted(present ^ set(listed))} added or removed")
        for name in sorted(present & set(listed)):
            digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
            if digest != listed[name]:
                mismatches.append(f"{directory.name}/{name} changed after it was frozen")
    assert mismatches == [], ("a frozen revision changed; add a new revision instead"
                              " (python tools/freeze_revision.py new ...):\n" + "\n".join(mismatches))


def test_sources_match_what_head_installs():
    """Every edit of db/functions or db/install has been frozen into a revision."""
    result = subprocess.run([sys.executable, "tools/freeze_revision.py", "status"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "db/functions and db/install match what the revisions install at head", (
        "sources differ from the frozen revisions (python tools/freeze_revision.py new ... ):\n" + result.stdout)
