"""Guards a client cannot get past, a resumable backfill, and bounded costs (docs/contract.md §4, §6, §9).

What it does (frozen files in db/migrations/sql/stepsync_0004/), in one short
transaction as the tables' owner:
  1. The read-only rule checked per row: the row guards (t05_*) let a write
     through unguarded only when the sync's marker is set AND the writing role
     is the sync's (stepsync.tg_step_library__guard explains why a marker set
     inside the client's own statement no longer gets past them).
  2. TRUNCATE of step_library refused while it holds synced rows, for every
     role but the owner (t03_guard_truncate).
  3. Who may see a step written once (stepsync._may_see), used by
     visible_steps and fork_step; fork_step checks the one row it copies.
  4. search_steps refuses queries beyond its stated limits (54000).
  5. A publish that fails the checks is located in linear time
     (stepsync._walk_troubleshooting's exact walk).
  6. stepsync.backfill_progress: a row while the backfill is unfinished. It is
     marked pending here, so that one backfill pass checks every flow once
     (an install before this revision could have been cut off in its backfill
     without a trace); stepsync.backfill_batch moves its cursor on in each
     batch's transaction (only a batch that starts at or before it) and
     clears it when no flow is left.
Then, outside a transaction and unless `-x backfill=false`, the backfill
batch after batch from where the row says (backfill_resume.gexec.sql).
A backfill cut off later is finished by `stepsync install` (at head: it
resumes from the cursor), by stepsync's own alembic environment after any
upgrade, or by `stepsync resync --all` run to the end.

Downgrading puts back the copies of stepsync_0002 and stepsync_0003 and drops
what is new.

Revision ID: stepsync_0004
Revises: stepsync_0003
Create Date: 2026-12-06
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0004"
down_revision = "stepsync_0003"
branch_labels = None
depends_on = None

FUNCTIONS = (
    "_may_see.sql",
    "_popularity_class.sql",
    "_class_key.sql",
    "_match_tier.sql",
    "_json_tokens.sql",
    "_walk_troubleshooting.sql",
    "_nodes.sql",
    "backfill_batch.sql",
    "tg_step_library__guard.sql",
    "tg_step_library__guard_truncate.sql",
    "visible_steps.sql",
    "fork_step.sql",
    "tg_step_library__search_vector.sql",
    "search_steps.sql",
)
TRIGGERS = (
    "step_library__t03_guard_truncate.sql",
    "step_library__t05_guard_insert.sql",
    "step_library__t05_guard_update.sql",
    "step_library__t05_guard_delete.sql",
)
# file -> the revision whose frozen copy the downgrade puts back
PREVIOUS = {
    "_walk_troubleshooting.sql": "stepsync_0002",
    "_nodes.sql": "stepsync_0002",
    "backfill_batch.sql": "stepsync_0002",
    "tg_step_library__guard.sql": "stepsync_0002",
    "visible_steps.sql": "stepsync_0002",
    "fork_step.sql": "stepsync_0002",
    "search_steps.sql": "stepsync_0003",
    "tg_step_library__search_vector.sql": "stepsync_0002",
    "step_library__t05_guard_insert.sql": "stepsync_0002",
    "step_library__t05_guard_update.sql": "stepsync_0002",
    "step_library__t05_guard_delete.sql": "stepsync_0002",
}
NEW = (
    "DROP TRIGGER IF EXISTS t03_guard_truncate ON public.step_library;",
    "DROP FUNCTION IF EXISTS stepsync.tg_step_library__guard_truncate();",
    "DROP FUNCTION IF EXISTS stepsync._may_see(text, uuid, uuid, uuid, uuid);",
    "DROP FUNCTION IF EXISTS stepsync._popularity_class(integer, uuid);",
    "DROP FUNCTION IF EXISTS stepsync._class_key(integer);",
    "DROP FUNCTION IF EXISTS stepsync._match_tier(pg_catalog.tsvector, pg_catalog.tsquery, pg_catalog.tsquery,"
    " pg_catalog.tsquery);",
    "DROP FUNCTION IF EXISTS stepsync._json_tokens(text);",
    "DROP TABLE IF EXISTS stepsync.backfill_progress;",
)
PENDING = (f"INSERT INTO stepsync.backfill_progress (revision) VALUES ('{revision}')"
           " ON CONFLICT (singleton) DO NOTHING;")


def upgrade() -> None:
    # Triggers keep how they were enabled (a subscriber's ENABLE ALWAYS): CREATE OR REPLACE resets it.
    frozen.transaction(op, frozen.read(revision, "library_node.sql"),   # the row type, now db/types/ (kept as it is)
                       frozen.read(revision, "backfill_progress.sql"),
                       *(frozen.read(revision, name) for name in FUNCTIONS),
                       frozen.read("stepsync_0002", "triggers_save.sql"),
                       *(frozen.read(revision, name) for name in TRIGGERS),
                       frozen.read("stepsync_0002", "triggers_restore.sql"),
                       PENDING,
                       history.schema_comment_sql(revision))
    if frozen.option(op, "backfill", True):
        frozen.outside_transaction(op, revision, "backfill_resume.gexec.sql")


def downgrade() -> None:
    frozen.transaction(op, *NEW, *(frozen.read(old, name) for name, old in PREVIOUS.items()),
                       history.schema_comment_sql(down_revision))
