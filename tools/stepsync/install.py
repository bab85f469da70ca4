"""`stepsync install`, `uninstall` and `sql`: stepsync in an application's own database (docs/contract.md §9).

install    preflight (every problem at once, one line each, nothing changed), then
           alembic upgrade to the newest revision with stepsync's own version
           table, retried while the application holds the locks it needs, then
           the backfill batch after batch with a progress bar.
uninstall  alembic downgrade to the tables revision: stepsync's schema,
           triggers, view and search index go; with drop_columns also the
           columns, keys and synced rows it added. The application's tables and
           rows always stay. Then the version table goes.
sql        the same install as a psql script, made offline (no connection).

Who owns what: every object stepsync creates belongs to the owner of
public.step_library (the sync's SECURITY DEFINER functions must run as the
role that owns the tables). The installing role is that owner, or a role that
may SET ROLE to it (a superuser, or a deploy role granted the owner role):
the migrations act as the owner while they create things.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import psycopg
from psycopg import sql as pgsql

from stepsync import database, history
from stepsync.database import StepsyncError, one_row
from stepsync.paths import DB_DIR, FROZEN_SQL_DIR

DB_INSTALL_DIR = DB_DIR / "install"

head_revision = history.head_revision
installed_revision = history.installed_revision
install_mode = history.install_mode

log = logging.getLogger("stepsync")

LOCK_RETRIES = 20
_RETRY_SQLSTATES = {"55P03": "a lock the install needs is held by another session",  # lock_not_available
                    "40P01": "a deadlock with an application transaction"}          # deadlock_detected


class PreflightFailed(StepsyncError):
    """The database cannot take stepsync as it is; `problems` lists (object, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(f"stepsync cannot be installed here: {len(problems)} problem(s)")
        self.problems = problems


def preflight_sql() -> str:
    """The packaged preflight query (frozen with the newest install revision)."""
    return (FROZEN_SQL_DIR / _install_revision() / "preflight.sql").read_text(encoding="utf-8")


def _install_revision() -> str:
    """The newest revision that carries an install (preflight.sql)."""
    revisions = sorted(p.name for p in FROZEN_SQL_DIR.glob("stepsync_*") if (p / "preflight.sql").exists())
    return revisions[-1]


def preflight(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Every problem that stops stepsync from installing into CONN's database; [] when there is none."""
    rows = conn.execute(preflight_sql()).fetchall()
    if not conn.autocommit:
        conn.rollback()
    return [(str(obj), str(message)) for obj, message in rows]


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error, also when SQLAlchemy or alembic wrapped it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(getattr(current, "orig", None), "sqlstate", None)
        if state:
            return str(state)
        current = current.__cause__ or current.__context__
    return None


def _upgrade_with_retries(url: str, revision: str, *, downgrade: bool = False,
                          say: Callable[[str], None], **options: object) -> None:
    """alembic upgrade (or downgrade) to REVISION, tried again while the application holds the locks.

    Each DDL transaction gives up after lock_timeout (1 s) rather than make the
    application's statements queue behind it; every step is safe to run again,
    so the whole run is simply retried after a pause.
    """
    from alembic import command

    config = database.alembic_config(url, **options)
    for attempt in range(1, LOCK_RETRIES + 1):
        try:
            if downgrade:
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
            return
        except Exception as exc:  # any error; retried only for the SQLSTATEs below
            state = _sqlstate(exc)
            if state not in _RETRY_SQLSTATES or attempt == LOCK_RETRIES:
                raise
            pause = min(0.5 * attempt, 5.0)
            say(f"{_RETRY_SQLSTATES[state]}: trying again in {pause:.1f} s ({attempt}/{LOCK_RETRIES - 1})")
            time.sleep(pause)


@contextmanager
def _as_owner(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Act as the owner of the tables on CONN (autocommit), as the migrations do."""
    owner = one_row(conn.execute("SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class"
                                 " WHERE oid = 'public.step_library'::regclass"))[0]
    switched = one_row(conn.execute("SELECT current_user <> %s", (owner,)))[0]
    if switched:
        conn.execute(pgsql.SQL("SET ROLE {}").format(pgsql.Identifier(owner)))
    try:
        yield
    finally:
        if switched:
            conn.execute("RESET ROLE")


def _reown(conn: psycopg.Connection[Any]) -> int:
    """Give stepsync's objects to the tables' owner when the tables changed owner; how many moved."""
    query = (DB_INSTALL_DIR / "reown.gexec.sql").read_text(encoding="utf-8")
    statements = [row[0] for row in conn.execute(query).fetchall()]
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    return len(statements)


# A backfill batch keeps its flows' rows locked until it commits: a publish, rename or edit of one of
# them waits for the rest of the batch. So batches are sized by time, not by a count of flows: each
# aims at BATCH_SECONDS, whatever the flows' size (measured on a busy 2-core machine: 200 flows of 10
# steps took 0.3 s a batch, 200 flows of 200 steps 3-5 s, and renames waited 3 s behind them).
BATCH_SECONDS = 0.5
FIRST_BATCH = 10


def _next_batch(size: int, seconds: float, largest: int) -> int:
    """The next batch's size after SIZE flows took SECONDS: aimed at BATCH_SECONDS, at most doubled."""
    aimed = size * BATCH_SECONDS / seconds if seconds > 0 else largest
    return max(1, min(largest, 2 * size, int(aimed)))


def backfill(url: str, *, batch: int = 200, progress: Callable[[int, int, int], None] | None = None,
             warn: Callable[[str], None]) -> tuple[int, int, int]:
    """stepsync.backfill_batch until no flow is left, each batch its own transaction.

    A batch takes at most BATCH (flows), fewer when the flows are large: each is sized from the
    time the one before took, to last about BATCH_SECONDS.
    Returns (flows looked at, library rows written or retired, flows skipped).
    PROGRESS(flows done, flows in all, rows written) is called after each batch;
    WARN gets each skipped flow's warning. Interrupted (Ctrl-C), every finished
    batch stays committed; running it again goes on where it stopped.
    """
    flows = written = skipped = 0
    with database.connect(url, autocommit=True) as conn:

        def on_notice(diag: Any) -> None:
            if (diag.severity_nonlocalized or diag.severity) == "WARNING":
                warn(f"{diag.message_primary}" + (f" ({diag.message_detail})" if diag.message_detail else ""))

        conn.add_notice_handler(on_notice)
        with _as_owner(conn):
            total = one_row(conn.execute(
                "SELECT count(*) FROM public.trees AS t WHERE (t.status = 'published' AND t.is_active)"
                " OR ((NOT t.is_active OR t.status = 'archived') AND EXISTS (SELECT FROM public.step_library s"
                " WHERE s.source_tree_id = t.id AND s.is_flow_synced AND s.is_active))"))[0]
            after = None
            size = min(batch, FIRST_BATCH)
            while True:
                started = time.monotonic()
                row = conn.execute("SELECT * FROM stepsync.backfill_batch(%s, %s)", (after, size)).fetchone()
                assert row is not None
                last, done, rows, bad = row
                if done == 0:
                    break
                size = _next_batch(size, time.monotonic() - started, batch)
                after, flows, written, skipped = last, flows + done, written + rows, skipped + bad
                if progress is not None:
                    progress(flows, max(total, flows), written)
    return flows, written, skipped


def install(url: str, *, run_backfill: bool = True, say: Callable[[str], None],
            warn: Callable[[str], None],
            progress: Callable[[int, int, int], None] | None = None) -> str:
    """Install or upgrade stepsync in the application database at URL; returns what it did, in a line.

    Raises PreflightFailed (nothing changed) when the database cannot take it.
    """
    head = head_revision()
    with database.connect(url) as conn:
        current = installed_revision(conn)
        if history.carried_by_application(conn):
            raise StepsyncError(f"stepsync ({current}) is carried by this application's own alembic: upgrade it"
                                " there (alembic upgrade heads), not with stepsync install")
        if current == head:
            moved = _reown(conn)
            if moved:
                return (f"stepsync is at revision {head}; the tables changed owner since the install, so"
                        f" {moved} of its objects were given to their owner")
            return f"stepsync is up to date (revision {head}); nothing to do"
        problems = preflight(conn)
    if problems:
        raise PreflightFailed(problems)
    _upgrade_with_retries(url, "head", say=say, backfill=False)
    message = (f"installed stepsync revision {head}" if current is None
               else f"upgraded stepsync from {current} to {head}")
    if not run_backfill:
        return message + "; no backfill (run `stepsync resync --all` to sync the flows listed now)"
    flows, written, skipped = backfill(url, progress=progress, warn=warn)
    return (f"{message}; backfill: {flows - skipped} flows in step, {written} library rows written or retired,"
            f" {skipped} skipped")


def uninstall(url: str, *, drop_columns: bool, say: Callable[[str], None]) -> str:
    """Remove stepsync from the database at URL (docs/contract.md §9.5); returns what it did, in a line."""
    with database.connect(url) as conn:
        current = installed_revision(conn)
        if current is None:
            return "stepsync is not installed here; nothing to do"
        own_table = one_row(conn.execute(
            f"SELECT pg_catalog.to_regclass('public.{history.VERSION_TABLE}') IS NOT NULL"))[0]
    if not own_table:
        raise StepsyncError("stepsync is carried by this application's own alembic: remove it there"
                            " (alembic downgrade stepsync@base), not with stepsync uninstall")
    _upgrade_with_retries(url, history.TABLES_REVISION, downgrade=True, say=say, keep_columns=not drop_columns)
    with database.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{history.VERSION_TABLE}")
    kept = "" if drop_columns else "; the sync columns, keys and entries stay (--drop-columns removes them)"
    return f"uninstalled stepsync (was at {current}); the application's tables and rows stay{kept}"


# The same refusal as the install revision's (db/migrations/versions/stepsync_0002_install.py).
_REFUSED = "stepsync cannot be installed into this database"
_REFUSED_HINT = "Fix each problem listed (stepsync install lists them too), then run again."


def sql(*, run_backfill: bool = True) -> str:
    """The install as a psql script, made without connecting anywhere (docs/contract.md §9.6)."""
    from alembic import command

    from stepsync import frozen

    config = database.alembic_config(None, backfill=run_backfill)
    buffer = StringIO()
    config.output_buffer = buffer
    command.upgrade(config, "head", sql=True)
    header = (f"-- stepsync {head_revision()}: install into an existing application database.\n"
              "-- Made by `stepsync sql`; apply with: psql -v ON_ERROR_STOP=1 -f this-file.sql\n"
              "-- Run it as the owner of public.step_library, or as a role that may SET ROLE to it.\n"
              "-- It refuses, changing nothing, when the preflight finds a problem (see DETAIL).\n"
              "\\set ON_ERROR_STOP on\n")
    # The preflight first, before alembic's script creates and fills public.stepsync_version in a
    # transaction of its own: the install revision runs it too, but only after that has committed.
    preflight = ("-- The preflight (docs/contract.md §9.3): stop here, before anything is written.\n"
                 + frozen.refuse_if_any(preflight_sql(), _REFUSED, _REFUSED_HINT))
    return header + preflight + buffer.getvalue()


def print_problems(problems: list[tuple[str, str]], stream: Any = sys.stderr) -> None:
    """One line a problem: the object, then what is wrong and the fix."""
    for obj, message in problems:
        print(f"stepsync: {obj}: {message}", file=stream)
