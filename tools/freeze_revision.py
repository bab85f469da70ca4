"""Write stepsync's frozen revisions from the sources in db/ (a developer's tool; not shipped).

    python tools/freeze_revision.py status
        which files of db/ (types, views, functions, triggers, install) differ from what the
        revisions install at head (their newest frozen copies)
    python tools/freeze_revision.py new "what it changes"
        a new revision db/migrations/versions/stepsync_NNNN_<slug>.py that
        installs the changed files (frozen into db/migrations/sql/stepsync_NNNN/)
        and whose downgrade puts back the previous copies and drops the new
        objects; plus its SHA256SUMS. Changed files of db/citus/ go to its citus/ folder, which
        stepsync.citus installs on a Citus coordinator (the upgrade on one node never runs them)
    python tools/freeze_revision.py refresh stepsync_NNNN
        re-copy the sources of a revision that has NOT been released yet (still
        being written in this change) into its frozen directory, and rewrite its
        SHA256SUMS. It refuses a revision listed in db/migrations/released.txt:
        a database that ran it would differ from one that runs the new files.

Every frozen directory carries SHA256SUMS, the checksums of its files as they
were written; tests/test_frozen.py checks them, so a landed revision cannot be
edited by mistake.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# db/ by kind: the objects' sources (one object a file, named after it), and the install's own steps.
TYPES = ROOT / "db" / "types"
VIEWS = ROOT / "db" / "views"
FUNCTIONS = ROOT / "db" / "functions"
TRIGGERS = ROOT / "db" / "triggers"
OBJECTS = (TYPES, VIEWS, FUNCTIONS, TRIGGERS)
INSTALL = ROOT / "db" / "install"
# The distributed variant (docs/contract.md §11): only the objects and install steps that differ on a
# Citus coordinator, frozen into db/migrations/sql/<revision>/citus/ under the same names.
CITUS = ROOT / "db" / "citus"
CITUS_FROZEN = "citus"
FROZEN = ROOT / "db" / "migrations" / "sql"
VERSIONS = ROOT / "db" / "migrations" / "versions"
RELEASED = ROOT / "db" / "migrations" / "released.txt"
SUMS = "SHA256SUMS"


def sources() -> dict[str, Path]:
    """File name -> current source, for every file a revision may freeze."""
    found: dict[str, Path] = {}
    for folder in (*OBJECTS, INSTALL):
        for path in sorted(folder.glob("*.sql")):
            if path.name in found:
                sys.exit(f"{path.name} is in both {found[path.name].parent} and {folder}: file names must be unique")
            found[path.name] = path
    return found


def citus_sources() -> dict[str, Path]:
    """File name -> current source, for every file of the distributed variant (db/citus/*/)."""
    found: dict[str, Path] = {}
    for path in sorted(CITUS.glob("*/*.sql")):
        if path.name in found:
            sys.exit(f"{path.name} is twice in {CITUS}: file names must be unique")
        found[path.name] = path
    return found


def revisions() -> list[str]:
    """stepsync revision ids with a frozen directory, oldest first."""
    return sorted(p.name for p in FROZEN.glob("stepsync_*") if p.is_dir())


def newest_copies() -> dict[str, Path]:
    """File name -> its newest frozen copy among stepsync's revisions."""
    copies: dict[str, Path] = {}
    for revision in revisions():
        for path in sorted((FROZEN / revision).glob("*.sql")):
            copies[path.name] = path
    return copies


def changed() -> tuple[list[str], list[str]]:
    """(changed files, new files) of db/ against the newest frozen copies (db/citus/'s as citus/NAME)."""
    copies = newest_copies()
    citus_copies = {name: path for revision in revisions()
                    for name, path in ((p.name, p) for p in sorted((FROZEN / revision / CITUS_FROZEN).glob("*.sql")))}
    edited, added = [], []
    for prefix, found, frozen in (("", sources(), copies), (f"{CITUS_FROZEN}/", citus_sources(), citus_copies)):
        for name, path in found.items():
            if name not in frozen:
                added.append(prefix + name)
            elif frozen[name].read_bytes() != path.read_bytes():
                edited.append(prefix + name)
    return edited, added


def write_sums(directory: Path) -> None:
    files = [p for p in directory.iterdir() if p.is_file() and p.name != SUMS]
    files += [p for p in (directory / CITUS_FROZEN).glob("*") if p.is_file()]
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(directory).as_posix()}\n"
             for p in sorted(files, key=lambda p: p.relative_to(directory).as_posix())]
    (directory / SUMS).write_text("".join(lines), encoding="utf-8")


def _is_trigger(name: str) -> bool:
    return (TRIGGERS / name).is_file()


def _drop(name: str) -> str:
    """A statement that removes the object a new file defines (downgrade)."""
    stem = name.removesuffix(".sql")
    if _is_trigger(name):
        table, trigger = stem.split("__", 1)
        return f"DROP TRIGGER IF EXISTS {trigger} ON public.{table};"
    if (VIEWS / name).is_file():
        return f"DROP VIEW IF EXISTS public.{stem};"
    text = (FUNCTIONS / name).read_text(encoding="utf-8")
    kind = "PROCEDURE" if re.search(r"^CREATE OR REPLACE PROCEDURE", text, re.M) else "FUNCTION"
    return f"DROP {kind} IF EXISTS stepsync.{stem};"


TEMPLATE = '''"""{message}

Installs the frozen copies in db/migrations/sql/{revision}/ (written by
tools/freeze_revision.py from db/): {files}.
Downgrading puts back the copies of {previous} and drops what is new. Schema
stepsync's comment names the revision installed (stepsync status reads it).

Revision ID: {revision}
Revises: {previous}
Create Date: {today}
"""

from alembic import op

from stepsync import frozen, history

revision = "{revision}"
down_revision = "{previous}"
branch_labels = None
depends_on = None

FUNCTIONS = {functions!r}
TRIGGERS = {triggers!r}
# file -> the revision whose frozen copy the downgrade puts back
PREVIOUS = {restore!r}
NEW = {drops!r}


def upgrade() -> None:
    # Triggers keep how they were enabled (a subscriber's ENABLE ALWAYS): CREATE OR REPLACE resets it.
    frozen.transaction(op, *(frozen.read(revision, name) for name in FUNCTIONS),
                       frozen.read("stepsync_0002", "triggers_save.sql"),
                       *(frozen.read(revision, name) for name in TRIGGERS),
                       frozen.read("stepsync_0002", "triggers_restore.sql"),
                       history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, *NEW, *(frozen.read(old, name) for name, old in PREVIOUS.items()),
                       history.schema_comment_sql(down_revision))
'''


CITUS_ONLY_TEMPLATE = '''"""{message}

Only the distributed variant changes (docs/contract.md §11): the frozen copies
in db/migrations/sql/{revision}/citus/ ({variants}), written by
tools/freeze_revision.py from db/citus/, which stepsync.citus installs on a
Citus coordinator. On one node nothing changes but the revision that schema
stepsync's comment names (stepsync status reads it).

Revision ID: {revision}
Revises: {previous}
Create Date: {today}
"""

from alembic import op

from stepsync import frozen, history

revision = "{revision}"
down_revision = "{previous}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
'''

def new(message: str) -> Path:
    edited, added = changed()
    if not edited and not added:
        sys.exit("nothing changed in db/: no revision to write")
    install_only = [n for n in edited + added if (INSTALL / n).exists() or (TYPES / n).exists()]
    if install_only:
        sys.exit(f"db/install or db/types files changed ({', '.join(install_only)}): the install itself changes;"
                 " write that"
                 " revision by hand (see stepsync_0002_install.py), then `refresh` it")
    previous = revisions()[-1]
    before = newest_copies()
    number = int(previous.split("_")[1]) + 1
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40]
    revision = f"stepsync_{number:04d}"
    directory = FROZEN / revision
    directory.mkdir()
    prefix = f"{CITUS_FROZEN}/"
    variants = sorted(n.removeprefix(prefix) for n in edited + added if n.startswith(prefix))
    names = sorted(n for n in edited + added if not n.startswith(prefix))
    available = sources()
    for name in names:
        shutil.copyfile(available[name], directory / name)
    if variants:   # installed on a Citus coordinator by stepsync.citus, never by this revision's upgrade
        (directory / CITUS_FROZEN).mkdir()
        for name in variants:
            shutil.copyfile(citus_sources()[name], directory / CITUS_FROZEN / name)
    write_sums(directory)
    path = VERSIONS / f"{revision}_{slug}.py"
    if not names:   # only the distributed variant changed: on one node the upgrade only names the revision
        path.write_text(CITUS_ONLY_TEMPLATE.format(
            message=message, revision=revision, previous=previous, today=date.today().isoformat(),
            variants=", ".join(variants)), encoding="utf-8")
        return path
    restore = {name: before[name].parent.name for name in sorted(edited) if not name.startswith(prefix)}
    path.write_text(TEMPLATE.format(
        message=message, revision=revision, previous=previous, today=date.today().isoformat(),
        files=", ".join(names), functions=tuple(n for n in names if not _is_trigger(n)),
        triggers=tuple(n for n in names if _is_trigger(n)), restore=restore,
        drops=tuple(_drop(n) for n in sorted(added) if not n.startswith(prefix))), encoding="utf-8")
    return path


def released() -> dict[str, tuple[str, str]]:
    """Released revisions (db/migrations/released.txt) -> (SHA-256 of SHA256SUMS, SHA-256 of the revision file)."""
    found = {}
    for line in RELEASED.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            revision, sums, source = line.split()
            found[revision] = (sums, source)
    return found


def refresh(revision: str) -> None:
    directory = FROZEN / revision
    if not directory.is_dir():
        sys.exit(f"no frozen directory {directory}")
    if revision in released():
        sys.exit(f"{revision} is released (db/migrations/released.txt): it never changes again;"
                 " write a new revision instead (python tools/freeze_revision.py new ...)")
    available = sources()
    for path in sorted(directory.glob("*.sql")):
        if path.name not in available:
            sys.exit(f"{path.name} has no source in db/ any more: edit the revision by hand")
        shutil.copyfile(available[path.name], path)
    citus = citus_sources()
    for path in sorted((directory / CITUS_FROZEN).glob("*.sql")):
        if path.name not in citus:
            sys.exit(f"{CITUS_FROZEN}/{path.name} has no source in db/citus/ any more: edit the revision by hand")
        shutil.copyfile(citus[path.name], path)
    write_sums(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status")
    add = commands.add_parser("new")
    add.add_argument("message")
    again = commands.add_parser("refresh")
    again.add_argument("revision")
    args = parser.parse_args()
    if args.command == "status":
        edited, added = changed()
        for name in edited:
            print(f"changed  {name}")
        for name in added:
            print(f"new      {name}")
        if not edited and not added:
            print("db/ matches what the revisions install at head")
    elif args.command == "new":
        print(f"wrote {new(args.message).relative_to(ROOT)}")
    else:
        refresh(args.revision)
        print(f"refreshed db/migrations/sql/{args.revision}/ and its {SUMS}")


if __name__ == "__main__":
    main()
