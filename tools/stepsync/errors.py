"""Typed errors for what stepsync's database logic raises, and `translate` to get them.

The triggers and functions report through SQLSTATEs and diagnostics (docs/contract.md §4,
§6): a publish that fails the checks is 23514 with the flow and node in the
message, the JSON path in DETAIL and the fix in HINT; a write to a synced
library step is 42501; an unknown flow or step is P0002. `translate` turns a
driver exception (psycopg 3, psycopg2, asyncpg) or a SQLAlchemy exception
wrapping one into `FlowCheckFailed`, `SyncedStepReadOnly` or `NotFound`, all
subclasses of `StepsyncDatabaseError`, and returns None for anything else::

    try:
        session.commit()
    except sqlalchemy.exc.DBAPIError as exc:
        error = stepsync.errors.translate(exc)
        if isinstance(error, stepsync.errors.FlowCheckFailed):
            show(error.node_id, error.path, error.hint)
        raise

or, to have the typed error raised in place of the driver's::

    with stepsync.errors.translated():
        session.commit()

(`stepsync.sqlalchemy.translate_errors(engine)` does the same for every
statement of an engine.) This module imports no driver and no SQLAlchemy: it
reads the exceptions' attributes, so it works with whichever is installed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "Diagnostics",
    "FlowCheckFailed",
    "NotFound",
    "StepsyncDatabaseError",
    "SyncedStepReadOnly",
    "diagnostics",
    "translate",
    "translated",
]


@dataclass(frozen=True)
class Diagnostics:
    """The server's report of an error, as every driver gives it."""

    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None
    context: str | None = None
    schema_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None


class StepsyncDatabaseError(Exception):
    """An error raised by stepsync's triggers or functions, with its diagnostics.

    `orig` (also `__cause__`) is the exception it was translated from: the
    driver's, or SQLAlchemy's wrapping it.
    """

    SQLSTATE: ClassVar[str] = ""

    def __init__(self, diag: Diagnostics, orig: BaseException | None = None) -> None:
        super().__init__(diag.message)
        self.diagnostics = diag
        self.sqlstate: str = diag.sqlstate
        self.message: str = diag.message
        self.detail: str | None = diag.detail
        self.hint: str | None = diag.hint
        self.orig: BaseException | None = orig
        self.__cause__ = orig

    def __str__(self) -> str:
        lines = [self.message]
        if self.detail:
            lines.append(f"DETAIL: {self.detail}")
        if self.hint:
            lines.append(f"HINT: {self.hint}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def __reduce__(self) -> tuple[type[StepsyncDatabaseError], tuple[Diagnostics]]:
        # Picklable (for worker pools and task queues); the original exception stays behind.
        return (type(self), (self.diagnostics,))


class FlowCheckFailed(StepsyncDatabaseError):
    """A write that publishes a flow failed the publish-time checks (docs/contract.md §4, SQLSTATE 23514).

    Nothing was changed. `tree_id` is the flow; `node_id` the offending node's
    id, or None when it has no usable id or the problem is the structure
    itself (then `problem` names the node by its JSON path); `path` the JSON
    path of the offending value (`$.steps[0].title`); `hint` how to fix it.
    """

    SQLSTATE = "23514"

    def __init__(self, diag: Diagnostics, orig: BaseException | None = None) -> None:
        super().__init__(diag, orig)
        match = _FLOW_CHECK.match(diag.message)
        self.tree_id: uuid.UUID | None = _uuid(match.group("tree")) if match else None
        self.problem: str = match.group("problem") if match else diag.message
        self.node_id: str | None = _node_id(self.problem)
        self.path: str | None = None
        if diag.detail is not None and diag.detail.startswith(_PATH_PREFIX):
            self.path = diag.detail[len(_PATH_PREFIX):]


Operation = Literal["insert", "update", "delete", "marker", "truncate"]


class SyncedStepReadOnly(StepsyncDatabaseError):
    """A direct write to a synced library step, refused by the read-only rule (docs/contract.md §6.1, SQLSTATE 42501).

    `operation` is what was refused: "update" (a synced row changed beyond
    usage_count, rating and rating_count, or a hand-made row made synced),
    "insert" (a row created synced), "delete" (an active synced row),
    "marker" (a session that set stepsync.sync_writing itself), or "truncate"
    (TRUNCATE of a library that holds synced rows, by a role that does not own it). `step_id` and
    `tree_id` name the row and its flow when the server said them;
    `changed_columns` lists what an update tried to change. The hint says to
    fork the step (stepsync.fork_step) or republish the flow.
    """

    SQLSTATE = "42501"

    def __init__(self, diag: Diagnostics, orig: BaseException | None = None) -> None:
        super().__init__(diag, orig)
        self.operation: Operation | None = None
        self.step_id: uuid.UUID | None = None
        self.tree_id: uuid.UUID | None = None
        self.changed_columns: tuple[str, ...] = ()
        for operation, pattern in _READ_ONLY:
            match = pattern.match(diag.message)
            if match is None:
                continue
            self.operation = operation
            groups = match.groupdict()
            self.step_id = _uuid(groups.get("step"))
            self.tree_id = _uuid(groups.get("tree"))
            break
        changed = _CHANGED.match(diag.detail or "")
        if changed and changed.group("columns") != "nothing":
            self.changed_columns = tuple(changed.group("columns").split(", "))


class NotFound(StepsyncDatabaseError):
    """An unknown flow or step (SQLSTATE P0002).

    From stepsync.preview and stepsync.sync_tree (`tree_id` set) or
    stepsync.fork_step (`step_id` and `user_id` set: the step does not exist,
    is retired or not visible to the user, or the user does not exist).
    """

    SQLSTATE = "P0002"

    def __init__(self, diag: Diagnostics, orig: BaseException | None = None) -> None:
        super().__init__(diag, orig)
        tree = _NO_FLOW.match(diag.message)
        fork = _NO_FORK.match(diag.message)
        self.tree_id: uuid.UUID | None = _uuid(tree.group("tree")) if tree else None
        self.step_id: uuid.UUID | None = _uuid(fork.group("step")) if fork else None
        self.user_id: uuid.UUID | None = _uuid(fork.group("user")) if fork else None


_UUID = r"[0-9A-Fa-f-]{36}|<NULL>"
_FLOW_CHECK = re.compile(rf"flow (?P<tree>{_UUID}) cannot be published: (?P<problem>.*)\Z", re.DOTALL)
_PATH_PREFIX = "JSON path: "
_READ_ONLY: tuple[tuple[Operation, re.Pattern[str]], ...] = (
    ("update", re.compile(rf"library step (?P<step>{_UUID}) is managed by flow (?P<tree>{_UUID}) and is read-only\Z")),
    ("delete", re.compile(
        rf"library step (?P<step>{_UUID}) is managed by flow (?P<tree>{_UUID}) "
        r"and cannot be deleted while it is active\Z")),
    ("update", re.compile(rf"library step (?P<step>{_UUID}) is hand-made and cannot be turned into a synced step\Z")),
    ("insert", re.compile(r"only the sync may create synced library steps\Z")),
    ("marker", re.compile(r"stepsync\.sync_writing is reserved for the sync\Z")),
    ("truncate", re.compile(r"step_library holds steps synced from flows and cannot be truncated\Z")),
)
_GUARD_FUNCTIONS = ("stepsync.tg_step_library__guard", "stepsync.tg_step_library__check_marker",
                    "stepsync.tg_step_library__guard_truncate")
_CHANGED = re.compile(r"The update changes (?P<columns>.*?); only ", re.DOTALL)
_NO_FLOW = re.compile(rf"no flow with id (?P<tree>{_UUID})\Z")
_NO_FORK = re.compile(rf"step (?P<step>{_UUID}) cannot be forked by user (?P<user>{_UUID})\Z")


def _uuid(text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _node_id(problem: str) -> str | None:
    """The node id the problem starts with (`node "s1" has ...`), written as a JSON string."""
    if not problem.startswith('node "'):
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(problem, len("node "))
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _own_diagnostics(exc: BaseException) -> Diagnostics | None:
    """Diagnostics of a psycopg 3, psycopg2 or asyncpg exception itself (no unwrapping)."""
    diag = getattr(exc, "diag", None)
    if diag is not None:  # psycopg 3 (sqlstate) and psycopg2 (pgcode): libpq's fields
        sqlstate = _text(getattr(exc, "sqlstate", None)) or _text(getattr(exc, "pgcode", None))
        message = _text(getattr(diag, "message_primary", None))
        if sqlstate is None or message is None:
            return None
        return Diagnostics(
            sqlstate=sqlstate,
            message=message,
            detail=_text(getattr(diag, "message_detail", None)),
            hint=_text(getattr(diag, "message_hint", None)),
            context=_text(getattr(diag, "context", None)),
            schema_name=_text(getattr(diag, "schema_name", None)),
            table_name=_text(getattr(diag, "table_name", None)),
            column_name=_text(getattr(diag, "column_name", None)),
        )
    if type(exc).__module__.partition(".")[0] == "asyncpg":  # asyncpg.PostgresError: fields as attributes
        sqlstate = _text(getattr(exc, "sqlstate", None))
        message = _text(getattr(exc, "message", None))
        if sqlstate is None or message is None:
            return None
        return Diagnostics(
            sqlstate=sqlstate,
            message=message,
            detail=_text(getattr(exc, "detail", None)),
            hint=_text(getattr(exc, "hint", None)),
            context=_text(getattr(exc, "context", None)),
            schema_name=_text(getattr(exc, "schema_name", None)),
            table_name=_text(getattr(exc, "table_name", None)),
            column_name=_text(getattr(exc, "column_name", None)),
        )
    return None


def diagnostics(exc: BaseException) -> Diagnostics | None:
    """The server's diagnostics behind `exc`, or None when it carries none.

    Looks at `exc` itself (psycopg 3, psycopg2, asyncpg), then what it wraps:
    a SQLAlchemy exception's `orig` (for asyncpg that is SQLAlchemy's adapter
    error, whose `__cause__` is asyncpg's exception) and `__cause__` chains.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 16:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, StepsyncDatabaseError):
            return current.diagnostics
        found = _own_diagnostics(current)
        if found is not None:
            return found
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException):
            pending.append(orig)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return None


def _is_read_only_rule(diag: Diagnostics) -> bool:
    if any(pattern.match(diag.message) for _, pattern in _READ_ONLY):
        return True
    return diag.context is not None and any(name in diag.context for name in _GUARD_FUNCTIONS)


def translate(exc: BaseException) -> StepsyncDatabaseError | None:
    """The typed stepsync error behind `exc`, or None when it is not one of stepsync's.

    `exc` may be a psycopg 3, psycopg2 or asyncpg exception, or a SQLAlchemy
    exception wrapping one (`sqlalchemy.exc.DBAPIError`, through `orig`). A
    23514 is a `FlowCheckFailed` only when it comes from a publish (other
    CHECK violations give None); a 42501 is a `SyncedStepReadOnly` only when
    the read-only rule raised it (a missing privilege gives None); every P0002
    is a `NotFound`. A `StepsyncDatabaseError` comes back as it is. The result
    keeps `exc` as `orig` and `__cause__`.
    """
    if isinstance(exc, StepsyncDatabaseError):
        return exc
    diag = diagnostics(exc)
    if diag is None:
        return None
    if diag.sqlstate == FlowCheckFailed.SQLSTATE and _FLOW_CHECK.match(diag.message):
        return FlowCheckFailed(diag, exc)
    if diag.sqlstate == SyncedStepReadOnly.SQLSTATE and _is_read_only_rule(diag):
        return SyncedStepReadOnly(diag, exc)
    if diag.sqlstate == NotFound.SQLSTATE:
        return NotFound(diag, exc)
    return None


@contextmanager
def translated() -> Iterator[None]:
    """Raise the typed stepsync error in place of any exception that `translate` recognises.

    Other exceptions pass through unchanged::

        with stepsync.errors.translated():
            session.flush()
    """
    try:
        yield
    except Exception as exc:
        error = translate(exc)
        if error is None or error is exc:
            raise
        raise error from exc
