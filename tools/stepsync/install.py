"""`stepsync install`, `uninstall` and `sql`: stepsync in an application's own database (docs/contract.md §9).

install    preflight (every problem at once, one line each, nothing changed), then
           alembic upgrade to the newest revision with stepsync's own version
           table, retried while the application holds the locks it needs, then
           the backfill batch after batch with a progress bar. The upgrade marks
           the backfill pending (stepsync.backfill_progress) and each batch moves
           its cursor on as it commits, so an install cut off in its backfill
           (the server stopped, the client killed, Ctrl-C) is finished by the
           next `stepsync install`, from where it stopped (docs/operating.md,
           "An interrupted install").
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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from io import StringIO
from typing import Any

import psycopg
from psycopg import sql as pgsql

from stepsync import citus, database, distribute, history
from stepsync import row_security as rls
from stepsync.database import StepsyncError, one_row
from stepsync.paths import FROZEN_SQL_DIR
from stepsync.resync import _CITUS_ALL, NEEDS_WORK_CITUS, Result, citus_batch, count_flows
from stepsync.row_security import RowSecurity

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
    return _newest_with("preflight.sql")


def _newest_with(name: str) -> str:
    """The newest revision whose frozen files include NAME: what `stepsync install` runs, never db/install/."""
    return sorted(p.name for p in FROZEN_SQL_DIR.glob("stepsync_*") if (p / name).exists())[-1]


def citus_preflight_sql() -> str:
    """The packaged refusal of a Citus database (db/install/citus_preflight.sql says why)."""
    return (FROZEN_SQL_DIR / _newest_with("citus_preflight.sql") / "citus_preflight.sql").read_text(encoding="utf-8")


def citus_layout(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """On a Citus database, how each of the four tables is laid out now, beside what docs/contract.md
    §11.1 asks for: (object, line) pairs, for the refusal's detail."""
    wanted = {"accounts": "a reference table", "users": "a reference table",
              "trees": "distributed by id", "step_library": "distributed by tree_key, co-located with trees"}
    rows = dict(conn.execute(
        "SELECT c.relname::text, CASE WHEN t.table_name IS NULL THEN 'a local table'"
        " WHEN t.citus_table_type = 'distributed' THEN 'distributed by ' || t.distribution_column"
        " || ' (co-location group ' || t.colocation_id || ')' ELSE 'a ' || t.citus_table_type || ' table' END"
        "  FROM pg_catalog.pg_class AS c LEFT JOIN public.citus_tables AS t ON t.table_name = c.oid"
        " WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s)", (list(wanted),)).fetchall())
    return [(f"table public.{name}", f"is {rows.get(name, 'missing')}; docs/contract.md §11.1 lays it out as {want}")
            for name, want in wanted.items()]


def preflight(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Every problem that stops stepsync from installing into CONN's database; [] when there is none.
    A Citus database is refused first, with how its tables are laid out."""
    refused = [(str(obj), str(message)) for obj, message in conn.execute(citus_preflight_sql()).fetchall()]
    if refused:
        with suppress(psycopg.Error):   # the refusal stands without the detail (citus_tables: Citus 10 and later)
            refused += citus_layout(conn)
        if not conn.autocommit:
            conn.rollback()
        return refused
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
    query = (FROZEN_SQL_DIR / _newest_with("reown.gexec.sql") / "reown.gexec.sql").read_text(encoding="utf-8")
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


@dataclass
class Pending:
    """An unfinished backfill: the row of stepsync.backfill_progress."""

    revision: str
    started_at: Any
    after_tree_id: Any
    flows_done: int
    rows_written: int
    updated_at: Any

    def as_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "started_at": self.started_at, "updated_at": self.updated_at,
                "after_tree_id": self.after_tree_id, "flows_done": self.flows_done,
                "rows_written": self.rows_written}


def unfinished_backfill(conn: psycopg.Connection[Any]) -> Pending | None:
    """The backfill an install left unfinished (stepsync.backfill_progress), or None.

    None too before the revision that keeps the record (stepsync_0004).
    """
    if not one_row(conn.execute("SELECT pg_catalog.to_regclass('stepsync.backfill_progress') IS NOT NULL"))[0]:
        return None
    row = conn.execute("SELECT p.revision, p.started_at, p.after_tree_id, p.flows_done, p.rows_written,"
                       " p.updated_at FROM stepsync.backfill_progress AS p").fetchone()
    return None if row is None else Pending(*row)


def flows_after(conn: psycopg.Connection[Any], after: Any) -> int:
    """How many flows after AFTER (a flow id; None: all) the backfill looks at (on one node as
    stepsync.backfill_batch chooses them; on Citus as stepsync.citus.backfill does)."""
    return count_flows(conn, None, after)


class BackfillInterrupted(StepsyncError):
    """The backfill stopped before the end (Ctrl-C); every finished batch is committed, and the record
    of the unfinished backfill says where the next `stepsync install` goes on."""

    def __init__(self, done: int, total: int, written: int, *, rolled_back: bool) -> None:
        batch = ("the batch in progress was rolled back, every batch before it is committed" if rolled_back
                 else "stopped after the batch in progress committed")
        super().__init__(f"interrupted: the backfill {batch}; {done} of {total} flows done: run `stepsync install`"
                         " again to finish it (it goes on after the flows already done)")
        self.done, self.total, self.written, self.rolled_back = done, total, written, rolled_back


def backfill(url: str, *, batch: int = 200, progress: Callable[[int, int, int], None] | None = None,
             warn: Callable[[str], None], stop: Callable[[], bool] | None = None) -> tuple[int, int, int]:
    """stepsync.backfill_batch from the cursor of the unfinished backfill to the end, each batch its own
    transaction; nothing when no backfill is unfinished (no row in stepsync.backfill_progress).

    A batch takes at most BATCH (flows), fewer when the flows are large: each is sized from the
    time the one before took, to last about BATCH_SECONDS.
    Returns (flows looked at, library rows written or retired, flows skipped), by this run.
    PROGRESS(flows done, flows in all, rows written) is called after each batch, counting the
    flows an earlier run did too; WARN gets each skipped flow's warning. STOP() is asked between
    batches. Interrupted (STOP, or a KeyboardInterrupt, which cancels the batch in progress), it
    raises BackfillInterrupted: every finished batch stays committed, and the cursor with it, so
    running it again goes on where it stopped.
    """
    flows = written = skipped = 0
    with database.connect(url, autocommit=True) as conn:

        def on_notice(diag: Any) -> None:
            if (diag.severity_nonlocalized or diag.severity) == "WARNING":
                warn(f"{diag.message_primary}" + (f" ({diag.message_detail})" if diag.message_detail else ""))

        conn.add_notice_handler(on_notice)
        with _as_owner(conn):
            pending = unfinished_backfill(conn)
            if pending is None:
                return 0, 0, 0
            after = pending.after_tree_id
            earlier, rows_before = pending.flows_done, pending.rows_written
            total = earlier + flows_after(conn, after)
            size = min(batch, FIRST_BATCH)
            in_batch = False
            try:
                while True:
                    if stop is not None and stop():
                        raise BackfillInterrupted(earlier + flows, max(total, earlier + flows), written,
                                                  rolled_back=False)
                    started = time.monotonic()
                    in_batch = True
                    row = conn.execute("SELECT * FROM stepsync.backfill_batch(%s, %s)", (after, size)).fetchone()
                    in_batch = False
                    assert row is not None
                    last, done, rows, bad = row
                    if done == 0:
                        break
                    size = _next_batch(size, time.monotonic() - started, batch)
                    after, flows, written, skipped = last, flows + done, written + rows, skipped + bad
                    if progress is not None:
                        progress(earlier + flows, max(total, earlier + flows), rows_before + written)
            except KeyboardInterrupt:
                # In a batch, psycopg cancelled its statement (rolled back); between batches, nothing was open.
                raise BackfillInterrupted(earlier + flows, max(total, earlier + flows), written,
                                          rolled_back=in_batch) from None
    return flows, written, skipped


CITUS_BATCH = 50   # flows a transaction in the backfill: one delegated call each, about a second


def _citus_backfill(url: str, *, progress: Callable[[int, int, int], None] | None, warn: Callable[[str], None],
             stop: Callable[[], bool] | None) -> tuple[int, int, int]:
    """The install's backfill on Citus, from the cursor of stepsync.backfill_progress to the end: what
    `backfill` does on one node, with the batches of stepsync.resync.citus_batch (the sync runs on the
    flows' workers). Returns (flows, rows written or retired, flows skipped)."""

    with database.connect(url, autocommit=True) as conn:
        pending = unfinished_backfill(conn)
        if pending is None:
            return 0, 0, 0
        result = Result(total=count_flows(conn, None, pending.after_tree_id))
        try:
            while True:
                if stop is not None and stop():
                    raise BackfillInterrupted(pending.flows_done + result.done, pending.flows_done + result.total,
                                              result.written, rolled_back=False)
                seen = len(result.skipped)
                flows = citus_batch(conn, _CITUS_ALL, {"after": result.last_tree_id or pending.after_tree_id,
                                                       "batch": CITUS_BATCH}, result, move_backfill=True)
                for skipped in result.skipped[seen:]:
                    warn(f"stepsync backfill skipped flow {skipped['tree_id']} ({skipped['name']}):"
                         f" {skipped['message']}")
                if progress is not None:
                    progress(pending.flows_done + result.done, pending.flows_done + max(result.total, result.done),
                             pending.rows_written + result.written)
                if not flows:
                    break
        except KeyboardInterrupt:
            raise BackfillInterrupted(pending.flows_done + result.done, pending.flows_done + result.total,
                                      result.written, rolled_back=True) from None
        conn.execute("DELETE FROM stepsync.backfill_progress")
    return result.done, result.written, len(result.skipped)



def _backfill_summary(flows: int, written: int, skipped: int) -> str:
    return (f"{flows - skipped} flows in step, {written} library rows written or retired, {skipped} skipped")


FINISH_LATER = "run `stepsync install` again, or `stepsync resync --all`, to finish it"
BACKFILL_LATER = "run `stepsync install` again, or `stepsync resync --all`, later to sync the flows listed now"


def _row_security(url: str, wanted: RowSecurity, message: str) -> str:
    """MESSAGE, with what the install did about row-level security (docs/contract.md §12), if anything."""
    with database.connect(url) as conn, _as_owner(conn):
        done = rls.apply(conn, wanted)
    return message if done is None else f"{message}; {done}"


def install(url: str, *, run_backfill: bool = True, say: Callable[[str], None],
            warn: Callable[[str], None],
            progress: Callable[[int, int, int], None] | None = None,
            stop: Callable[[], bool] | None = None,
            row_security: RowSecurity | None = None) -> str:
    """Install or upgrade stepsync in the application database at URL; returns what it did, in a line.

    Then the backfill, from where an earlier install left it (stepsync.backfill_progress): at the
    newest revision already, `stepsync install` finishes a backfill that was cut off. STOP() is asked
    between backfill batches (see `backfill`). Then row-level security as ROW_SECURITY asks (its
    VIEWER checked before anything changes), or, asked nothing, stepsync's policies made again if
    they were changed. Raises PreflightFailed (nothing changed) when the database cannot take it,
    BackfillInterrupted when the backfill was interrupted.
    """
    head = head_revision()
    row_security = row_security or RowSecurity()
    with database.connect(url) as conn:
        on_citus = citus.is_citus(conn)
    if on_citus:
        return _install_citus(url, run_backfill=run_backfill, say=say, warn=warn, progress=progress, stop=stop,
                              row_security=row_security)
    with database.connect(url) as conn:
        if row_security.viewer is not None:
            rls.check_viewer(conn, row_security.viewer)
        current = installed_revision(conn)
        if history.carried_by_application(conn):
            raise StepsyncError(f"stepsync ({current}) is carried by this application's own alembic: upgrade it"
                                " there (alembic upgrade heads), not with stepsync install")
        if current == head:
            moved = _reown(conn)
            pending = unfinished_backfill(conn)
            conn.rollback()
            message = f"stepsync is at revision {head}"
            if moved:
                message += (f"; the tables changed owner since the install, so {moved} of its objects were given"
                            " to their owner")
            if pending is None:
                if not moved:
                    message = f"stepsync is up to date (revision {head})"
                    done = _row_security(url, row_security, message)
                    return done if done != message else f"{message}; nothing to do"
            elif not run_backfill:
                message += (f"; the backfill an earlier install left unfinished is still pending"
                            f" ({pending.flows_done} flows done): {FINISH_LATER}")
            else:
                flows, written, skipped = backfill(url, progress=progress, warn=warn, stop=stop)
                message += (f"; resumed the backfill an earlier install left unfinished"
                            f" (after {pending.flows_done} flows): {_backfill_summary(flows, written, skipped)}")
            return _row_security(url, row_security, message)
        problems = preflight(conn)
    if problems:
        raise PreflightFailed(problems)
    _upgrade_with_retries(url, "head", say=say, backfill=False)
    message = (f"installed stepsync revision {head}" if current is None
               else f"upgraded stepsync from {current} to {head}")
    if not run_backfill:
        message += f"; no backfill ({BACKFILL_LATER})"
    else:
        flows, written, skipped = backfill(url, progress=progress, warn=warn, stop=stop)
        message += f"; backfill: {_backfill_summary(flows, written, skipped)}"
    return _row_security(url, row_security, message)


def _install_citus(url: str, *, run_backfill: bool, say: Callable[[str], None], warn: Callable[[str], None],
                   progress: Callable[[int, int, int], None] | None, stop: Callable[[], bool] | None,
                   row_security: RowSecurity) -> str:
    """`install` on a Citus coordinator: the distributed variant (stepsync.citus), then its backfill."""
    head = head_revision()
    with database.connect(url) as conn:
        if row_security.viewer is not None or row_security.remove:
            raise StepsyncError("row-level security (--row-security, --no-row-security) is not available on Citus"
                                " in this version (docs/contract.md §11)")
        current = installed_revision(conn)
        if history.carried_by_application(conn):
            raise StepsyncError(f"stepsync ({current}) is carried by this application's own alembic: upgrade it"
                                " there (alembic upgrade heads), not with stepsync install")
        if current == head:
            pending = unfinished_backfill(conn)
            conn.rollback()
            message = f"stepsync is up to date (revision {head}, distributed on Citus)"
            if pending is None:
                return f"{message}; nothing to do"
            if not run_backfill:
                return (f"{message}; the backfill an earlier install left unfinished is still pending"
                        f" ({pending.flows_done} flows done): {FINISH_LATER}")
            flows, written, skipped = _citus_backfill(url, progress=progress, warn=warn, stop=stop)
            return (f"{message}; resumed the backfill an earlier install left unfinished"
                    f" (after {pending.flows_done} flows): {_backfill_summary(flows, written, skipped)}")
        if current is not None and citus.installed(conn):
            conn.rollback()
            citus.install(url)
            citus.refresh_statistics(url)
            message = f"upgraded stepsync from {current} to {head} (the distributed variant, on Citus)"
            # (every statement of the install may run again: stepsync.citus.install)
            if not run_backfill:
                return f"{message}; no backfill ({BACKFILL_LATER})"
            flows, written, skipped = _citus_backfill(url, progress=progress, warn=warn, stop=stop)
            return f"{message}; backfill: {_backfill_summary(flows, written, skipped)}"
        if current not in (None, history.TABLES_REVISION):   # stepsync_0001: `stepsync migrate` made the tables
            raise StepsyncError(f"stepsync {current} is installed here as on one node, which Citus cannot run: run"
                                " `stepsync distribute`, which lays the tables out and installs the distributed"
                                " variant (docs/contract.md §11.2)")
        problems = citus.preflight(conn, preflight_sql())
        if problems and all(o.startswith("table public.") for o, _ in problems):   # the layout alone
            try:
                statements = distribute.layout_statements(conn)
            except distribute.LayoutRefused as refused:   # what `stepsync distribute` could not do either
                statements, problems = [], problems + refused.problems
            conn.rollback()
            if statements:
                problems.append(("to lay them out", "run `stepsync distribute`, or these statements: "
                                 + " ".join(s.rstrip().rstrip(";") + ";" for s in statements)))
    if problems:
        raise PreflightFailed(problems)
    citus.install(url)
    message = f"installed stepsync revision {head} (the distributed variant, on Citus)"
    if not run_backfill:
        citus.refresh_statistics(url)
        return f"{message}; no backfill ({BACKFILL_LATER})"
    flows, written, skipped = _citus_backfill(url, progress=progress, warn=warn, stop=stop)
    citus.refresh_statistics(url)   # after the backfill: the sample sees its rows
    return f"{message}; backfill: {_backfill_summary(flows, written, skipped)}"


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
    with database.connect(url) as conn:
        distributed = citus.is_citus(conn) and citus.installed(conn)
    if distributed:   # the distributed variant; a one-node install on a coordinator goes by its revisions
        citus.uninstall(url, drop_columns=drop_columns)
    else:
        _upgrade_with_retries(url, history.TABLES_REVISION, downgrade=True, say=say, keep_columns=not drop_columns)
    with database.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS public.{history.VERSION_TABLE}")
    kept = "" if drop_columns else "; the sync columns, keys and entries stay (--drop-columns removes them)"
    return f"uninstalled stepsync (was at {current}); the application's tables and rows stay{kept}"


# The same refusal as the install revision's (db/migrations/versions/stepsync_0002_install.py).
_REFUSED = "stepsync cannot be installed into this database"
_REFUSED_HINT = "Fix each problem listed (stepsync install lists them too), then run again."


def sql(*, run_backfill: bool = True, viewer: str | None = None) -> str:
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
    # psql decides which install the database gets: the distributed variant on a Citus coordinator
    # (docs/contract.md §11), the revisions everywhere else.
    return (header
            + "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') AS stepsync_on_citus"
              " \\gset\n\\if :stepsync_on_citus\n"
            + citus.script(preflight_sql(), refused=_REFUSED, hint=_REFUSED_HINT, viewer=viewer,
                           needs_work=NEEDS_WORK_CITUS)
            + "\\else\n"
            + preflight + buffer.getvalue() + (rls.sql(viewer) if viewer is not None else "")
            + "\\endif\n")
