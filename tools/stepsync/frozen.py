"""Run the frozen SQL a revision carries (db/migrations/sql/<revision>/), online or as a script.

db/functions/ is the readable, current source of every function, trigger and
view. A revision never reads it: it runs the copy frozen beside it when it was
written, so old revisions keep their meaning when db/functions/ changes
(tests/test_frozen.py fails when a landed revision's files change; the drift
gate, tests/test_drift.py, fails when `upgrade head` differs from
db/functions/).

The same revision runs in three settings, and this module hides the
difference:
  * online through our own alembic environment (psycopg 3), or through an
    application's environment, whose driver may be psycopg 3, psycopg2 or
    asyncpg (SQLAlchemy's async dialect): the SQL goes to the driver
    connection as it is, so JSON literals and `%` signs are never mistaken
    for bind parameters (alembic's `op.execute` wraps a string in
    SQLAlchemy's text(), where `:name` is a bind parameter and the driver
    then wants every `%` doubled);
  * offline (`alembic upgrade --sql`, `stepsync sql`): the SQL is written to
    the script, and statement generators become psql `\\gexec` queries.

Revisions use three kinds of step:
  * `install(op, rev, *files)`: transactional SQL files, run as the owner of
    the application's tables, with search_path pinned while they run;
  * `outside_transaction(op, rev, file)`: a *generator* file, a query whose
    rows are statements that must run outside a transaction block (CREATE
    INDEX CONCURRENTLY, VALIDATE CONSTRAINT, CALL of a procedure that
    commits): each runs on its own, in autocommit, as the tables' owner;
  * `execute(op, sql)`: any SQL text, as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stepsync.database import literal
from stepsync.history import VERSION_TABLE
from stepsync.paths import FROZEN_SQL_DIR

log = logging.getLogger("stepsync.migrate")

# Every transactional step starts by acting as the owner of public.step_library (the sync's objects
# must belong to the tables' owner: docs/operating.md "Who owns what"), with a pinned search_path and
# a short lock timeout, and ends by restoring the caller's role and search_path, so that alembic
# records the revision as the role that connected.
_BECOME_OWNER = """\
DO $stepsync$
DECLARE
    v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c
                      WHERE c.oid = pg_catalog.to_regclass('public.step_library'));
BEGIN
    PERFORM pg_catalog.set_config('stepsync.saved_search_path', pg_catalog.current_setting('search_path'), true);
    PERFORM pg_catalog.set_config('stepsync.saved_role', current_user, true);
    -- An ALTER TABLE waiting for its lock makes every later statement on the table wait behind it:
    -- give up soon (`stepsync install` tries again) rather than stall the application.
    PERFORM pg_catalog.set_config('lock_timeout', COALESCE(
        NULLIF(pg_catalog.current_setting('stepsync.lock_timeout', true), ''), '1s'), true);
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    -- Functions are created in one go, some calling others not created yet (and an earlier stepsync's
    -- overloads linger until prune.sql): their bodies are checked by the tests, not at creation.
    PERFORM pg_catalog.set_config('check_function_bodies', 'off', true);
    IF v_owner IS NOT NULL AND v_owner <> current_user THEN
        EXECUTE pg_catalog.format('SET LOCAL ROLE %I', v_owner);
    END IF;
END;
$stepsync$;
"""

_RESTORE = """\
DO $stepsync$
BEGIN
    PERFORM pg_catalog.set_config('search_path', pg_catalog.current_setting('stepsync.saved_search_path'), true);
    EXECUTE pg_catalog.format('SET LOCAL ROLE %I', pg_catalog.current_setting('stepsync.saved_role'));
END;
$stepsync$;
"""

# Outside a transaction the same, session-wide, undone after each statement.
_BECOME_OWNER_SESSION = """\
DO $stepsync$
DECLARE
    v_owner name := (SELECT pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class AS c
                      WHERE c.oid = pg_catalog.to_regclass('public.step_library'));
BEGIN
    PERFORM pg_catalog.set_config('stepsync.saved_role', current_user, false);
    IF v_owner IS NOT NULL AND v_owner <> current_user THEN
        EXECUTE pg_catalog.format('SET ROLE %I', v_owner);
    END IF;
END;
$stepsync$"""

_RESTORE_SESSION = """\
DO $stepsync$
BEGIN
    EXECUTE pg_catalog.format('SET ROLE %I', pg_catalog.current_setting('stepsync.saved_role'));
END;
$stepsync$"""


def option(op: Any, name: str, default: bool) -> bool:
    """A stepsync option of this run: configure(stepsync_NAME=...) in the environment, or `-x NAME=...`."""
    value = op.get_context().opts.get(f"stepsync_{name}")
    if value is None:
        from alembic import context

        value = context.get_x_argument(as_dictionary=True).get(name)
    if value is None:
        return default
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


def read(revision: str, name: str) -> str:
    """The text of db/migrations/sql/<revision>/<name>."""
    return (FROZEN_SQL_DIR / revision / name).read_text(encoding="utf-8")


def _offline(op: Any) -> bool:
    return bool(op.get_context().as_sql)


def _emit(op: Any, sql: str) -> None:
    """Write SQL to the offline script as it is (alembic adds no terminator to static output)."""
    op.get_context().impl.static_output(sql.rstrip() + "\n")


class _Driver:
    """The migration connection's driver: runs SQL text with no parameters, and forwards notices."""

    def __init__(self, op: Any) -> None:
        from alembic.util import CommandError

        bind = op.get_bind()
        self.name = bind.dialect.driver
        self.raw = bind.connection.driver_connection
        # In an application's own alembic (its version table, not ours), stepsync's refusals become
        # alembic's CommandError: its command line prints them as one line, not a traceback.
        self.application = op.get_context().version_table != VERSION_TABLE
        if self.name not in ("psycopg", "psycopg2", "asyncpg"):
            raise CommandError(  # alembic's command line prints one line, `FAILED: ...`
                f"stepsync's migrations run on psycopg (3), psycopg2 or asyncpg, not {self.name!r}:"
                " use a postgresql+psycopg://, postgresql+psycopg2:// or postgresql+asyncpg:// URL")

    def execute(self, sql: str) -> None:
        if not self.application:
            self._execute(sql)
            return
        try:
            self._execute(sql)
        except Exception as exc:
            line = _refusal(exc)
            if line is None:
                raise
            from alembic.util import CommandError

            raise CommandError(line) from exc

    def _execute(self, sql: str) -> None:
        if self.name == "psycopg":
            if not self.application:  # stepsync's own env.py forwards notices from every connection
                self.raw.execute(sql)
                return
            self.raw.add_notice_handler(_log_notice)
            try:
                self.raw.execute(sql)
            finally:
                self.raw.remove_notice_handler(_log_notice)
        elif self.name == "psycopg2":
            with self.raw.cursor() as cursor:
                cursor.execute(sql)  # no parameters: `%` is left alone
            for notice in self.raw.notices:
                log.warning("%s", notice.strip())
            del self.raw.notices[:]
        else:  # asyncpg, inside SQLAlchemy's greenlet bridge
            from sqlalchemy.util import await_only

            def listener(_conn: Any, message: Any) -> None:
                log.warning("%s", getattr(message, "message", message))

            self.raw.add_log_listener(listener)
            try:
                await_only(self.raw.execute(sql))
            finally:
                self.raw.remove_log_listener(listener)

    def rows(self, sql: str) -> list[str]:
        """First column of every row of a query (for statement generators)."""
        if self.name == "psycopg":
            return [row[0] for row in self.raw.execute(sql).fetchall()]
        if self.name == "psycopg2":
            with self.raw.cursor() as cursor:
                cursor.execute(sql)
                return [row[0] for row in cursor.fetchall()]
        from sqlalchemy.util import await_only

        return [row[0] for row in await_only(self.raw.fetch(sql))]


def _log_notice(diag: Any) -> None:
    log.warning("%s", diag.message_primary)


def _refusal(exc: BaseException) -> str | None:
    """One line for a refusal raised by stepsync's own SQL (55000 or 2BP01, message `stepsync...`), else None.

    The driver's error (psycopg, psycopg2 or asyncpg) gives the message, the
    DETAIL lines (each problem the preflight found) and the HINT.
    """
    diag = getattr(exc, "diag", None)  # psycopg and psycopg2; asyncpg has the fields on the error
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    message = getattr(diag, "message_primary", None) or getattr(exc, "message", None) or ""
    if state not in ("55000", "2BP01") or not message.startswith(("stepsync ", "stepsync:")):
        return None
    detail = getattr(diag, "message_detail", None) or getattr(exc, "detail", None)
    hint = getattr(diag, "message_hint", None) or getattr(exc, "hint", None)
    if detail:
        message += ": " + "; ".join(line.strip() for line in detail.splitlines() if line.strip())
    return message + (f" ({hint.rstrip('.')})" if hint else "")


def execute(op: Any, sql: str) -> None:
    """Run SQL text (several statements allowed) on the migration's connection, or write it to the script."""
    if _offline(op):
        _emit(op, sql)
    else:
        _Driver(op).execute(sql)


def transaction(op: Any, *parts: str) -> None:
    """Run SQL PARTS in the revision's transaction, as the owner of the tables.

    They run with search_path = pg_catalog, pg_temp, so that what they create
    (trigger WHEN clauses, view and default expressions) binds to the system's
    operators and functions, never to look-alikes in another schema, and with a
    short lock_timeout; the caller's role and search_path are restored
    afterwards, so alembic records the revision as the role that connected.
    """
    execute(op, transaction_sql(*parts))


def session_as_owner_sql() -> tuple[str, str]:
    """(become, restore): statements that make the session act as the tables' owner outside a
    transaction block (as `outside_transaction` does), and undo it."""
    return _BECOME_OWNER_SESSION + ";\n", _RESTORE_SESSION + ";\n"


def transaction_sql(*parts: str) -> str:
    """SQL PARTS wrapped as `transaction` runs them: as the owner of the tables, with search_path pinned."""
    return _BECOME_OWNER + "\n".join(parts) + "\n" + _RESTORE


def install(op: Any, revision: str, *names: str) -> None:
    """Run the frozen files NAMES of REVISION in the revision's transaction (see `transaction`)."""
    transaction(op, *(read(revision, name) for name in names))


def unless_exists(relation: str, sql: str) -> str:
    """SQL that runs SQL (several statements) only when RELATION (schema-qualified) does not exist."""
    tag = "$stepsync_body$"
    assert tag not in sql
    return (f"DO $stepsync$\nBEGIN\n    IF pg_catalog.to_regclass({literal(relation)}) IS NULL THEN\n"
            f"        EXECUTE {tag}\n{sql}{tag};\n    END IF;\nEND;\n$stepsync$;\n")


def comments_of(sql: str) -> str:
    """The COMMENT ON statements of SQL (an object's file), to run again where the object itself is kept."""
    import re

    return "\n".join(m.group(0) for m in re.finditer(r"^COMMENT ON .*?;$", sql, re.M | re.S))


def refuse_if_any(query: str, message: str, hint: str) -> str:
    """SQL that raises 55000 (MESSAGE, HINT) with every row of QUERY (object, message) in DETAIL."""
    tag = "$stepsync_query$"
    assert tag not in query
    return f"""DO $stepsync$
DECLARE
    v_lines text;
BEGIN
    EXECUTE 'SELECT pg_catalog.string_agg(p.object || '': '' || p.message, E''\\n'') FROM ('
            || {tag}{query.rstrip().rstrip(';')}{tag} || ') AS p' INTO v_lines;
    IF v_lines IS NOT NULL THEN
        RAISE EXCEPTION {literal(message)}
            USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = v_lines, HINT = {literal(hint)};
    END IF;
END;
$stepsync$;
"""


@contextmanager
def _autocommit(op: Any) -> Iterator[None]:
    with op.get_context().autocommit_block():
        yield


def outside_transaction(op: Any, revision: str, name: str) -> None:
    """Run the statements generated by the frozen query NAME, each on its own, outside a transaction.

    Online the query runs first and each statement it returns is executed in
    autocommit; in a script the query is followed by psql's \\gexec, which does
    the same. Both act as the owner of the tables.
    """
    query = read(revision, name).rstrip().rstrip(";")
    with _autocommit(op):
        if _offline(op):
            _emit(op, _BECOME_OWNER_SESSION + ";")
            _emit(op, query + "\n\\gexec")
            _emit(op, _RESTORE_SESSION + ";")
            return
        driver = _Driver(op)
        driver.execute(_BECOME_OWNER_SESSION)
        try:
            for statement in driver.rows(query):
                log.debug("%s", statement.splitlines()[0])
                driver.execute(statement)
        finally:
            driver.execute(_RESTORE_SESSION)
