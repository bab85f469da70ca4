"""SQLAlchemy 2 and alembic integration for applications whose database has stepsync.

stepsync adds columns, keys, indexes, a view, a version table and a schema of
functions and triggers to the application's database (the list is
`stepsync.owned`). An application's alembic autogenerate, comparing its models
with such a database, would propose dropping all of them; a team that accepted
that revision would break every publish. Pass `include_object` (or
`combine_include_object(...)` when the application has its own filter) to
`context.configure()` in the application's `env.py`::

    from stepsync.sqlalchemy import include_object

    context.configure(connection=connection, target_metadata=Base.metadata,
                      include_object=include_object)

Then autogenerate proposes nothing for what stepsync owns and still sees the
application's own changes. With `include_schemas=True`, also pass
`include_name=include_name` so schema `stepsync` is not reflected at all.

Models may also map what stepsync adds: `StepsyncColumns` (a mixin for the
application's `step_library` model), `updated_at_column()` (an `updated_at`
that the server's trigger keeps current), and the read-only `StepLibraryEntry`
(the view `public.step_library_entries`). A publish flushed through a session
rewrites library rows behind the ORM's back: `expire_library()` or
`expire_library_on_publish()` make loaded steps reload, as does
`select(...).execution_options(populate_existing=True)`.
`translate_errors(engine)` makes every statement raise stepsync's typed errors
(`stepsync.errors`) in place of SQLAlchemy's.

Importing this module needs SQLAlchemy, not a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    event,
    func,
    inspect,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Mapper,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.schema import ColumnCollectionConstraint, SchemaItem

from stepsync import owned
from stepsync.errors import StepsyncDatabaseError, translate

__all__ = [
    "ReadOnlyViewError",
    "StepLibraryEntry",
    "StepLibraryEntryColumns",
    "StepsyncBase",
    "StepsyncColumns",
    "combine_include_name",
    "combine_include_object",
    "expire_library",
    "expire_library_on_publish",
    "include_name",
    "include_object",
    "is_stepsync_object",
    "translate_errors",
    "updated_at_column",
]

IncludeObject = Callable[[SchemaItem, str | None, str, bool, SchemaItem | None], bool]
"""alembic's include_object hook: (object, name, type_, reflected, compare_to) -> include it."""

IncludeName = Callable[[str | None, str, Any], bool]
"""alembic's include_name hook: (name, type_, parent_names) -> reflect it."""


# --- alembic autogenerate -------------------------------------------------------------------


def _table_of(item: SchemaItem) -> Table | None:
    table = getattr(item, "table", None)
    return table if isinstance(table, Table) else None


def _is_owned_column(column: Column[Any]) -> bool:
    table = _table_of(column)
    if table is None:
        return False
    if owned.is_owned_column(table.name, column.name, table.schema):
        return True
    # A generated column computed by a stepsync function (search), whatever its name.
    computed = column.computed
    return computed is not None and f"{owned.SCHEMA}." in str(computed.sqltext)


def _is_owned_index(index: Index) -> bool:
    table = _table_of(index)
    if table is None:
        return False
    if owned.is_owned_constraint_or_index(table.name, index.name, table.schema):
        return True
    columns = list(index.columns)
    expressions = [expr for expr in index.expressions if not isinstance(expr, Column)]
    if any(f"{owned.SCHEMA}." in str(expr) for expr in expressions):
        return True  # an expression index over a stepsync function (search)
    return bool(columns) and not expressions and all(_is_owned_column(column) for column in columns)


def _is_owned_constraint(constraint: ColumnCollectionConstraint) -> bool:
    table = _table_of(constraint)
    if table is None:
        return False
    name = constraint.name if isinstance(constraint.name, str) else None
    if owned.is_owned_constraint_or_index(table.name, name, table.schema):
        return True
    columns = list(constraint.columns)
    return bool(columns) and all(_is_owned_column(column) for column in columns)


def is_stepsync_object(object: SchemaItem, type_: str) -> bool:
    """True when `object` (of alembic's kind `type_`) is something stepsync owns.

    That is: a table in schema stepsync, the view step_library_entries, the
    version table stepsync_version; a sync column of step_library (or a
    generated column computed by a stepsync function); on step_library, an
    index, unique key or foreign key that stepsync names, that covers only
    stepsync's columns (so a key adopted under the application's own name
    counts), or that indexes a stepsync function.
    """
    if type_ == "table" and isinstance(object, Table):
        return owned.is_owned_table(object.name, object.schema)
    if type_ == "column" and isinstance(object, Column):
        return _is_owned_column(object)
    if type_ == "index" and isinstance(object, Index):
        return _is_owned_index(object)
    if type_ in ("unique_constraint", "foreign_key_constraint") and isinstance(object, ColumnCollectionConstraint):
        return _is_owned_constraint(object)
    return False


def include_object(
    object: SchemaItem,
    name: str | None,
    type_: str,
    reflected: bool,
    compare_to: SchemaItem | None,
) -> bool:
    """alembic's `include_object` hook: False for anything stepsync owns, True otherwise.

    Works on both sides of the comparison, so autogenerate neither drops
    stepsync's objects from the database nor adds them from models that map
    them (`StepsyncColumns`, `StepLibraryEntry`).
    """
    return not is_stepsync_object(object, type_)


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """alembic's `include_name` hook: skips reflecting schema stepsync and stepsync's public tables.

    Only needed with `include_schemas=True`; `include_object` alone gives the
    same comparison.
    """
    if type_ == "schema":
        return name != owned.SCHEMA
    if type_ == "table" and name is not None:
        schema = parent_names.get("schema_name") if isinstance(parent_names, dict) else None
        return not owned.is_owned_table(name, schema)
    return True


def combine_include_object(*filters: IncludeObject | None) -> IncludeObject:
    """An include_object hook that includes an object only when stepsync's and every given filter do.

    For an application that has its own filter::

        context.configure(..., include_object=combine_include_object(my_include_object))
    """
    chain = [include_object, *(f for f in filters if f is not None)]

    def combined(
        object: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: SchemaItem | None
    ) -> bool:
        return all(f(object, name, type_, reflected, compare_to) for f in chain)

    return combined


def combine_include_name(*filters: IncludeName | None) -> IncludeName:
    """An include_name hook that reflects a name only when stepsync's and every given filter do."""
    chain = [include_name, *(f for f in filters if f is not None)]

    def combined(name: str | None, type_: str, parent_names: Any) -> bool:
        return all(f(name, type_, parent_names) for f in chain)

    return combined


# --- mapped columns -------------------------------------------------------------------------


def updated_at_column(**kwargs: Any) -> Mapped[datetime]:
    """An `updated_at timestamptz NOT NULL DEFAULT now()` that the server's trigger keeps current.

    stepsync's BEFORE UPDATE trigger sets updated_at on trees and step_library
    (docs/contract.md §5.9); `server_onupdate=FetchedValue()` tells the ORM so, and it
    reloads the value after a flush instead of keeping the old one. Extra
    keyword arguments go to `mapped_column` (a `comment`, say).
    """
    return mapped_column(
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        server_onupdate=FetchedValue(),
        **kwargs,
    )


class StepsyncColumns:
    """Mixin for an application's `step_library` model: the columns stepsync adds, mapped.

    Optional: a model without them works, and `include_object` ignores them
    either way. The sync writes them (and the read-only rule refuses a client
    that does, except `forked_from_id` on hand-made rows); values the server
    changes behind an UPDATE are marked `FetchedValue`, so the ORM reloads
    them. The foreign keys point at `trees` (override `stepsync_trees_table`)
    and at the model's own table; the unique key (source_tree_id,
    source_node_id) is left to the database.
    """

    stepsync_trees_table: ClassVar[str] = owned.TREES_TABLE

    @declared_attr
    def source_tree_id(cls) -> Mapped[uuid.UUID | None]:
        """The flow the step is synced from; the foreign key sets it to NULL when the flow is deleted."""
        return mapped_column(
            Uuid,
            ForeignKey(f"{cls.stepsync_trees_table}.id", ondelete="SET NULL", name="step_library_source_tree_id_fkey"),
            nullable=True,
            server_onupdate=FetchedValue(),
        )

    @declared_attr
    def source_node_id(cls) -> Mapped[str | None]:
        """The node id within that flow."""
        return mapped_column(String(255), nullable=True)

    @declared_attr
    def is_flow_synced(cls) -> Mapped[bool]:
        """True for flow-owned (read-only) steps; false for hand-made rows and forks."""
        return mapped_column(Boolean, nullable=False, server_default=text("false"))

    @declared_attr
    def last_synced_at(cls) -> Mapped[datetime | None]:
        """When a publish last changed or revived the step (set by the sync)."""
        return mapped_column(DateTime(timezone=True), nullable=True, server_onupdate=FetchedValue())

    @declared_attr
    def forked_from_id(cls) -> Mapped[uuid.UUID | None]:
        """The step this one was forked from (stepsync.fork_step); NULL when that step is deleted."""
        table = getattr(cls, "__tablename__", owned.LIBRARY_TABLE)
        return mapped_column(
            Uuid,
            ForeignKey(f"{table}.id", ondelete="SET NULL", name="step_library_forked_from_id_fkey"),
            nullable=True,
        )


class ReadOnlyViewError(InvalidRequestError):
    """An attempt to insert, update or delete through a model of the read-only view step_library_entries."""


class StepLibraryEntryColumns:
    """Mixin mapping the view `public.step_library_entries`: every step_library column plus `source_tree_name`.

    Read-only: flushing an insert, update or delete of such an object raises
    `ReadOnlyViewError`. `StepLibraryEntry` is the ready-made model; use the
    mixin to put one on the application's own declarative base (for
    relationships), with `__tablename__ = "step_library_entries"`.
    """

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    step_type: Mapped[str] = mapped_column(Text)
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    visibility: Mapped[str] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    usage_count: Mapped[int] = mapped_column(Integer)
    rating: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    rating_count: Mapped[int] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source_tree_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    source_node_id: Mapped[str | None] = mapped_column(String(255))
    is_flow_synced: Mapped[bool] = mapped_column(Boolean)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    forked_from_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    source_tree_name: Mapped[str | None] = mapped_column(Text)


def _refuse_write(mapper: Mapper[Any], connection: Connection, target: object) -> None:
    raise ReadOnlyViewError(
        f"{type(target).__name__} maps the read-only view public.step_library_entries;"
        " write public.step_library (or publish a flow) instead"
    )


for _event in ("before_insert", "before_update", "before_delete"):
    event.listen(StepLibraryEntryColumns, _event, _refuse_write, propagate=True)


class StepsyncBase(DeclarativeBase):
    """Declarative base of stepsync's own models, with a MetaData of its own (never in the application's)."""

    metadata = MetaData()


class StepLibraryEntry(StepLibraryEntryColumns, StepsyncBase):
    """A row of the read-only view public.step_library_entries."""

    __tablename__ = "step_library_entries"
    __table_args__ = ({"schema": owned.TABLE_SCHEMA, "info": {"is_view": True}},)


# --- sessions -------------------------------------------------------------------------------


def _is_table(mapper: Mapper[Any], names: Iterable[str]) -> bool:
    table = mapper.local_table
    return isinstance(table, Table) and owned.is_public_schema(table.schema) and table.name in names


def expire_library(session: Session) -> int:
    """Expire every loaded step_library (and step_library_entries) object of `session`; return how many.

    A publish flushed through the session rewrites library rows in the
    database; the next access to an expired object reloads it, in the same
    transaction. For an AsyncSession pass `async_session.sync_session`, and
    reload with `await async_session.refresh(obj)` or a query (an async
    session cannot lazy-load on attribute access).
    """
    names = (owned.LIBRARY_TABLE, *owned.VIEWS)
    stale = [obj for obj in list(session.identity_map.values()) if _is_table(_mapper_of(obj), names)]
    for obj in stale:
        session.expire(obj)
    return len(stale)


def _mapper_of(obj: object) -> Mapper[Any]:
    state = inspect(obj)
    mapper: Mapper[Any] = state.mapper
    return mapper


_WROTE_TREES = "stepsync.wrote_trees"


def _note_tree_writes(session: Session, flush_context: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if _is_table(_mapper_of(obj), (owned.TREES_TABLE,)):
            session.info[_WROTE_TREES] = True
            return


def _expire_after_tree_writes(session: Session, flush_context: Any) -> None:
    if session.info.pop(_WROTE_TREES, False):
        expire_library(session)


def expire_library_on_publish(target: Session | sessionmaker[Any] | type[Session]) -> None:
    """After every flush that wrote trees, expire the session's loaded library objects.

    `target` is a Session, a sessionmaker or the Session class (for an
    AsyncSession, its `sync_session_class`, or `Session` itself). Expiring
    costs nothing until an object is used again, when it reloads.
    """
    event.listen(target, "after_flush", _note_tree_writes)
    event.listen(target, "after_flush_postexec", _expire_after_tree_writes)


# --- errors ---------------------------------------------------------------------------------


def _translate_handle_error(context: ExceptionContext) -> StepsyncDatabaseError | None:
    return translate(context.sqlalchemy_exception or context.original_exception)


def translate_errors(engine: Engine | Any) -> None:
    """Make every statement run through `engine` raise stepsync's typed errors (`stepsync.errors`).

    A publish that fails the checks then raises `FlowCheckFailed` from
    `session.flush()` or `commit()`, a write to a synced step
    `SyncedStepReadOnly`, an unknown flow or step `NotFound`; everything
    else stays SQLAlchemy's. `orig` is SQLAlchemy's exception, `__cause__`
    the driver's. Accepts an Engine or an AsyncEngine.
    """
    sync_engine = getattr(engine, "sync_engine", engine)
    event.listen(sync_engine, "handle_error", _translate_handle_error)
