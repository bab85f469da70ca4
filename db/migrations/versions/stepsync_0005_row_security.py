"""Row-level security: the sync past the application's policies, the library's rule on request (§12).

docs/contract.md §12 is the contract.

What it does (frozen files in db/migrations/sql/stepsync_0005/), in one short
transaction as the tables' owner:
  1. stepsync.row_security, the setting (one row: the VIEWER, if any, and the
     policies as stepsync made them).
  2. The sync reads as the sync: backfill_batch, sync_tree, check_library and
     the delete trigger's function run with the marker set, and a stepsync_sync
     policy on each of the four tables the owner owns (stepsync.restore_policies)
     lets the sync, and only the sync (stepsync._sync_is_running), through the
     application's row-level security, enabled or forced.
  3. The library's rule as row-level security, for `stepsync install
     --row-security VIEWER`: stepsync.enable_row_security, disable_row_security,
     current_viewer and current_viewer_account (this revision enables nothing:
     the install does, when asked); stepsync.check_row_security for doctor.
  4. search_steps reads its rows with the caller's rights, after
     stepsync._search_ranked (SECURITY DEFINER, so the full-text index works
     under row-level security) found and ranked them.

Downgrading drops stepsync's policies (and row-level security on step_library
if stepsync turned it on), puts back the previous copies and drops what is new.

Revision ID: stepsync_0005
Revises: stepsync_0004
Create Date: 2026-12-07
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0005"
down_revision = "stepsync_0004"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "_sync_is_running.sql",
    "_exempt_from_row_security.sql",
    "_stepsync_policies.sql",
    "current_viewer.sql",
    "current_viewer_account.sql",
    "_may_change.sql",
    "restore_policies.sql",
    "enable_row_security.sql",
    "disable_row_security.sql",
    "check_row_security.sql",
    "backfill_batch.sql",
    "check_library.sql",
    "sync_tree.sql",
    "tg_trees__retire_on_delete.sql",
    "_search_ranked.sql",
    "search_steps.sql",
)
# file -> the revision whose frozen copy the downgrade puts back
PREVIOUS = {
    "backfill_batch.sql": "stepsync_0004",
    "check_library.sql": "stepsync_0002",
    "sync_tree.sql": "stepsync_0002",
    "tg_trees__retire_on_delete.sql": "stepsync_0002",
    "search_steps.sql": "stepsync_0004",
}
NEW = (
    "DROP FUNCTION IF EXISTS stepsync._search_ranked(uuid, text, text, text, uuid, integer);",
    "DROP FUNCTION IF EXISTS stepsync.check_row_security();",
    "DROP FUNCTION IF EXISTS stepsync.enable_row_security(text);",
    "DROP FUNCTION IF EXISTS stepsync.disable_row_security();",
    "DROP FUNCTION IF EXISTS stepsync.restore_policies();",
    "DROP FUNCTION IF EXISTS stepsync.current_viewer_account();",
    "DROP FUNCTION IF EXISTS stepsync._may_change(public.step_library);",
    "DROP FUNCTION IF EXISTS stepsync.current_viewer();",
    "DROP FUNCTION IF EXISTS stepsync._exempt_from_row_security(name);",
    "DROP FUNCTION IF EXISTS stepsync._stepsync_policies();",
    "DROP FUNCTION IF EXISTS stepsync._sync_is_running();",
    "DROP TABLE IF EXISTS stepsync.row_security;",
)


def upgrade() -> None:
    frozen.transaction(op, frozen.read(revision, "row_security_setting.sql"),
                       *(frozen.read(revision, name) for name in FUNCTIONS),
                       "SELECT stepsync.restore_policies();",
                       history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, frozen.read(revision, "policies_drop.sql"),
                       *(frozen.read(old, name) for name, old in PREVIOUS.items()),
                       *NEW,
                       history.schema_comment_sql(down_revision))
