"""What stepsync adds to the application's database: the one list of its objects.

`stepsync.sqlalchemy` (include_object and include_name, for an application's
alembic autogenerate) reads this module, and stepsync.replica takes the list
of triggers from it (the triggers `stepsync doctor`, `status` and `replica`
check), so a new column, key, index or trigger is named here once. (`stepsync
uninstall` does not read it: it is alembic's downgrade of the install
revision, which runs that revision's frozen uninstall.sql and
drop_columns.sql.) Pure data and predicates: it imports neither SQLAlchemy nor
a driver.

Everything of stepsync outside these lists lives in schema `stepsync`
(functions, trigger functions, types), except the view
`public.step_library_entries` and the version table `public.stepsync_version`.

An adopted database (docs/contract.md §9) may carry the sync columns' unique key or foreign
keys under the application's own names (`uq_step_library_source`, say), so
callers should also treat as stepsync's any key or index on step_library whose
columns are all stepsync columns: `is_owned_column_set` says that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

SCHEMA: Final = "stepsync"
"""Schema holding every function, trigger function and type of stepsync."""

TABLE_SCHEMA: Final = "public"
"""Schema of the application's tables (`accounts`, `users`, `trees`, `step_library`)."""

LIBRARY_TABLE: Final = "step_library"
TREES_TABLE: Final = "trees"

SYNC_COLUMNS: Final[tuple[str, ...]] = ("source_tree_id", "source_node_id", "is_flow_synced", "last_synced_at")
"""The seed design's four sync columns (its migration 030), which an adopted database may already have."""

LIBRARY_COLUMNS: Final[tuple[str, ...]] = (*SYNC_COLUMNS, "forked_from_id", "search_vector")
"""Every column stepsync adds to public.step_library."""

UNIQUE_KEY_COLUMNS: Final[tuple[str, ...]] = ("source_tree_id", "source_node_id")
"""Columns of the unique key the sync's upsert (ON CONFLICT) relies on."""

LIBRARY_CONSTRAINTS: Final[tuple[str, ...]] = (
    "step_library_source_tree_id_fkey",
    "step_library_forked_from_id_fkey",
    "step_library_source_key",  # UNIQUE (source_tree_id, source_node_id)
    "step_library_source_check",
    "step_library_synced_node_check",
    "step_library_synced_active_check",
    "step_library_is_flow_synced_not_null",  # only when an adopted is_flow_synced was nullable
)
"""Constraints stepsync adds to public.step_library, under the names a standalone install gives them."""

LIBRARY_INDEXES: Final[tuple[str, ...]] = (
    "step_library_forked_from_id_idx",
    "step_library_search_vector_idx",
)
"""Indexes stepsync adds to public.step_library (the unique key's index is named by the constraint)."""

VIEWS: Final[tuple[str, ...]] = ("step_library_entries",)
"""Views stepsync creates in schema public."""

VERSION_TABLE: Final = "stepsync_version"
"""stepsync's own version table in schema public (it never touches the application's alembic_version)."""

TRIGGERS: Final[dict[str, tuple[str, ...]]] = {
    TREES_TABLE: ("t10_set_updated_at", "t11_set_updated_at_structure", "t20_retire_on_delete",
                  "t30_sync_on_insert", "t31_sync_on_update", "t32_sync_on_structure", "t33_sync_on_settings"),
    LIBRARY_TABLE: (
        "t04_check_marker",
        "t05_guard_delete",
        "t05_guard_insert",
        "t05_guard_update",
        "t10_set_updated_at",
        "t20_search_vector_insert",
        "t21_search_vector_update",
        "t22_search_vector_usage",
    ),
}
"""Triggers stepsync creates on the application's tables; their functions live in schema stepsync."""


def is_public_schema(schema: str | None) -> bool:
    """True for the application tables' schema, given as None (the default) or by name."""
    return schema is None or schema == TABLE_SCHEMA


def is_owned_table(name: str, schema: str | None) -> bool:
    """True for a table or view that stepsync created (anything in its schema, its view, its version table)."""
    if schema == SCHEMA:
        return True
    return is_public_schema(schema) and (name in VIEWS or name == VERSION_TABLE)


def is_owned_column(table: str, column: str, schema: str | None = None) -> bool:
    """True for a column stepsync added to one of the application's tables."""
    return is_public_schema(schema) and table == LIBRARY_TABLE and column in LIBRARY_COLUMNS


def is_owned_constraint_or_index(table: str, name: str | None, schema: str | None = None) -> bool:
    """True for a constraint or index stepsync added, by its standalone name."""
    if not is_public_schema(schema) or table != LIBRARY_TABLE or name is None:
        return False
    return name in LIBRARY_CONSTRAINTS or name in LIBRARY_INDEXES


def is_owned_column_set(table: str, columns: Iterable[str], schema: str | None = None) -> bool:
    """True when a key or index on `table` covers only stepsync's columns (and at least one)."""
    names = list(columns)
    return bool(names) and all(is_owned_column(table, column, schema) for column in names)
