"""Released revisions never change: each frozen directory's files match the SHA256SUMS written with it,
and each released revision (db/migrations/released.txt) keeps the checksums recorded when it was released.

tools/freeze_revision.py writes the frozen copies of a revision and their
checksums, and refuses to refresh a released one. An edit to a released
revision or its frozen files (instead of a new revision) fails here, even when
its SHA256SUMS was rewritten to match.
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
        present = {p.relative_to(directory).as_posix() for p in (*directory.iterdir(), *directory.glob("citus/*"))
                   if p.is_file() and p.name != "SHA256SUMS"}
        if set(listed) != present:
            mismatches.append(f"{directory.name}: files {sorted(present ^ set(listed))} added or removed")
        for name in sorted(present & set(listed)):
            digest = hashlib.sha256((directory / name).read_bytes()).hexdigest()
            if digest != listed[name]:
                mismatches.append(f"{directory.name}/{name} changed after it was frozen")
    assert mismatches == [], ("a frozen revision changed; add a new revision instead"
                              " (python tools/freeze_revision.py new ...):\n" + "\n".join(mismatches))


def test_sources_match_what_head_installs():
    """Every edit of db/ (types, views, functions, triggers, install) has been frozen into a revision."""
    result = subprocess.run([sys.executable, "tools/freeze_revision.py", "status"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "db/ matches what the revisions install at head", (
        "sources differ from the frozen revisions (python tools/freeze_revision.py new ... ):\n" + result.stdout)


def test_released_revisions_are_byte_for_byte_what_was_released():
    import re

    released = {}
    for line in (REPO_ROOT / "db" / "migrations" / "released.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            revision, sums, source = line.split()
            released[revision] = (sums, source)
    assert {"stepsync_0001", "stepsync_0002", "stepsync_0003", "stepsync_0004", "stepsync_0005"} <= set(released)
    changed = []
    for revision, (sums, source) in sorted(released.items()):
        [path] = (REPO_ROOT / "db" / "migrations" / "versions").glob(f"{revision}_*.py")
        if hashlib.sha256((FROZEN_SQL_DIR / revision / "SHA256SUMS").read_bytes()).hexdigest() != sums:
            changed.append(f"{revision}: its frozen files")
        if hashlib.sha256(path.read_bytes()).hexdigest() != source:
            changed.append(f"{revision}: {path.name}")
    assert changed == [], "released revisions changed; write a new revision instead:\n" + "\n".join(changed)
    # ... and the freeze tool refuses to rewrite them.
    result = subprocess.run([sys.executable, "tools/freeze_revision.py", "refresh", "stepsync_0002"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "is released" in result.stderr, result
    assert re.fullmatch(r"stepsync_\d{4}", max(released))


def test_every_sql_file_a_revision_runs_is_frozen_with_it():
    """A revision reads only frozen copies (frozen.read / outside_transaction), never today's db/ files."""
    import re

    missing = []
    for path in sorted((REPO_ROOT / "db" / "migrations" / "versions").glob("stepsync_*.py")):
        text = path.read_text(encoding="utf-8")
        revision = re.search(r'^revision = "(stepsync_\d{4})"', text, re.M).group(1)
        down = re.search(r'^down_revision = "?(\w+)"?', text, re.M).group(1)
        names = {"revision": revision, "down_revision": down}
        for rev, name in re.findall(r'frozen\.read\(\s*("?\w+"?),\s*"([^"]+)"\)', text) + \
                re.findall(r'outside_transaction\(op,\s*("?\w+"?),\s*"([^"]+)"\)', text):
            rev = names.get(rev, rev.strip('"'))
            if not (FROZEN_SQL_DIR / rev / name).is_file():
                missing.append(f"{path.name}: {rev}/{name}")
        for listed in re.findall(r'^(?:FUNCTIONS|TRIGGERS) = \(([^)]*)\)', text, re.M | re.S):
            for name in re.findall(r'"([^"]+\.sql)"', listed):
                if not (FROZEN_SQL_DIR / revision / name).is_file():
                    missing.append(f"{path.name}: {revision}/{name}")
    assert missing == []


def test_a_change_of_the_distributed_variant_alone_makes_a_revision_that_one_node_only_stamps(tmp_path):
    """tools/freeze_revision.py new, when only db/citus/ changed: the variant frozen into <revision>/citus/,
    and a revision whose upgrade and downgrade on one node only name the revision (nothing to restore)."""
    import shutil

    shutil.copytree(REPO_ROOT / "db", tmp_path / "db")
    (tmp_path / "tools").mkdir()
    shutil.copyfile(REPO_ROOT / "tools" / "freeze_revision.py", tmp_path / "tools" / "freeze_revision.py")
    source = tmp_path / "db" / "citus" / "functions" / "_retire.sql"
    source.write_text(source.read_text(encoding="utf-8") + "-- edited\n", encoding="utf-8")
    before = sorted(p.name for p in (tmp_path / "db" / "migrations" / "versions").glob("stepsync_*.py"))
    result = subprocess.run([sys.executable, "tools/freeze_revision.py", "new", "Edited retire on Citus"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    number = int(before[-1].split("_")[1]) + 1
    revision = f"stepsync_{number:04d}"
    directory = tmp_path / "db" / "migrations" / "sql" / revision
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()) == [
        "SHA256SUMS", "citus/_retire.sql"]
    assert (directory / "citus" / "_retire.sql").read_bytes() == source.read_bytes()
    text = (tmp_path / "db" / "migrations" / "versions" / f"{revision}_edited_retire_on_citus.py").read_text(
        encoding="utf-8")
    assert "frozen.transaction(op, history.schema_comment_sql(revision))" in text
    assert "frozen.transaction(op, history.schema_comment_sql(down_revision))" in text
    assert "PREVIOUS" not in text and "DROP " not in text
    status = subprocess.run([sys.executable, "tools/freeze_revision.py", "status"], cwd=tmp_path,
                            capture_output=True, text=True, check=True)
    assert status.stdout.strip() == "db/ matches what the revisions install at head"
