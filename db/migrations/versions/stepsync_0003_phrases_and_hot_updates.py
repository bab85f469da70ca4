"""Faster phrase searches, and room for HOT usage bumps on the standalone path (docs/contract.md §6.8).

What it does (frozen files in db/migrations/sql/stepsync_0003/), in one short
transaction as the tables' owner:
  1. search_steps.sql: stepsync.search_steps checks the words of a phrase in
     the index in every batch of its walk, however common they are, and puts
     the words before the audience keys in each index condition (GIN checks the
     left side of an AND first). The candidate rule and the results are those of
     stepsync_0002; only the cost changes.
  2. fillfactor.sql: on the standalone path only (stepsync created the
     tables), public.step_library gets fillfactor 80 unless it has a fillfactor
     already, so that usage_count increments find room for a HOT update.
  3. schema stepsync's comment names this revision.
It takes no lock an application waits on for long: CREATE OR REPLACE FUNCTION
takes none on the tables, SET (fillfactor) a SHARE UPDATE EXCLUSIVE lock.

Downgrading puts back stepsync_0002's search_steps.sql, resets the fillfactor
it set (fillfactor_reset.sql) and the schema's comment.

Revision ID: stepsync_0003
Revises: stepsync_0002
Create Date: 2026-12-01
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0003"
down_revision = "stepsync_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, frozen.read(revision, "search_steps.sql"),
                       frozen.read(revision, "fillfactor.sql"),
                       history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, frozen.read("stepsync_0002", "search_steps.sql"),
                       frozen.read(revision, "fillfactor_reset.sql"),
                       history.schema_comment_sql(down_revision))
