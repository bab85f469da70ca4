"""Install the sync into the application's tables, or adopt what is there (docs/contract.md §2-§6, §9).

What it does, in order (frozen files in db/migrations/sql/stepsync_0002/):
  1. preflight.sql: refuses (55000, every problem in DETAIL) before changing
     anything when the tables cannot take stepsync;
  2. in one short transaction, as the tables' owner: schema stepsync, the sync
     columns and their constraints (added NOT VALID, or adopted), the search
     vector column, the row type, the view, every function (and none of an
     earlier stepsync that this one no longer has: prune.sql), the grants;
  3. outside a transaction: the unique key (source_tree_id, source_node_id),
     built CONCURRENTLY unless the application has one;
  4. in a second short transaction: the key attached as a constraint, then the
     triggers: from here on every publish syncs;
  5. outside a transaction, each statement committing on its own: the search
     vector of the rows already there, in ranges; the backfill
     (stepsync.backfill_batch over ranges of flows; skipped with
     `-x backfill=false`); the other indexes, CONCURRENTLY, and ANALYZE; the
     orphans retired and the constraints validated.
Every step can run again: an interrupted upgrade is finished by running it
again. The DDL waits at most lock_timeout (1 s, or the setting
stepsync.lock_timeout) for its locks, so it never stalls the application;
`stepsync install` retries it.

Downgrading removes stepsync (uninstall.sql) and, unless `-x keep_columns=true`
(`stepsync uninstall` without --drop-columns), the columns, keys and synced
rows it added (drop_columns.sql).

Revision ID: stepsync_0002
Revises: stepsync_0001
Create Date: 2026-12-01
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0002"
down_revision = "stepsync_0001"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "tg_set_updated_at.sql",
    "_json_kind.sql",
    "_walk_troubleshooting.sql",
    "_nodes.sql",
    "_sync.sql",
    "_retire.sql",
    "_retire_orphans.sql",
    "tg_trees__sync.sql",
    "tg_trees__retire_on_delete.sql",
    "sync_tree.sql",
    "backfill_batch.sql",
    "preview.sql",
    "tg_step_library__guard.sql",
    "tg_step_library__check_marker.sql",
    "visible_steps.sql",
    "fork_step.sql",
    "_search_document.sql",
    "tg_step_library__search_vector.sql",
    "search_steps.sql",
    "check_library.sql",
    "check_flows.sql",
)

TRIGGERS = (
    "trees__t10_set_updated_at.sql",
    "trees__t11_set_updated_at_structure.sql",
    "trees__t20_retire_on_delete.sql",
    "trees__t30_sync_on_insert.sql",
    "trees__t31_sync_on_update.sql",
    "trees__t32_sync_on_structure.sql",
    "trees__t33_sync_on_settings.sql",
    "step_library__t04_check_marker.sql",
    "step_library__t05_guard_insert.sql",
    "step_library__t05_guard_update.sql",
    "step_library__t05_guard_delete.sql",
    "step_library__t10_set_updated_at.sql",
    "step_library__t20_search_vector_insert.sql",
    "step_library__t21_search_vector_update.sql",
    "step_library__t22_search_vector_usage.sql",
)


def upgrade() -> None:
    frozen.execute(op, frozen.refuse_if_any(
        frozen.read(revision, "preflight.sql"),
        "stepsync cannot be installed into this database",
        "Fix each problem listed (stepsync install lists them too), then run again."))
    frozen.execute(op, frozen.read(revision, "schema.sql"))
    frozen.transaction(
        op,
        frozen.read(revision, "columns.sql"),
        frozen.read(revision, "search.sql"),
        frozen.read(revision, "types.sql"),
        frozen.unless_exists("public.step_library_entries", frozen.read(revision, "step_library_entries.sql")),
        frozen.comments_of(frozen.read(revision, "step_library_entries.sql")),  # a kept view gets today's
        *(frozen.read(revision, name) for name in FUNCTIONS),
        frozen.read(revision, "prune.sql"),
        frozen.read(revision, "grants.sql"),
    )
    frozen.outside_transaction(op, revision, "unique_key.gexec.sql")
    frozen.transaction(op, frozen.read(revision, "unique_key.sql"),
                       frozen.read(revision, "triggers_save.sql"),
                       *(frozen.read(revision, name) for name in TRIGGERS),
                       frozen.read(revision, "triggers_restore.sql"),
                       history.schema_comment_sql(revision))
    frozen.outside_transaction(op, revision, "search_fill.gexec.sql")
    if frozen.option(op, "backfill", True):
        frozen.outside_transaction(op, revision, "backfill.gexec.sql")
    frozen.outside_transaction(op, revision, "indexes.gexec.sql")
    frozen.outside_transaction(op, revision, "validate.gexec.sql")


def downgrade() -> None:
    parts = [frozen.read(revision, "uninstall.sql")]
    if not frozen.option(op, "keep_columns", False):
        parts.append(frozen.read(revision, "drop_columns.sql"))
    frozen.transaction(op, *parts)
