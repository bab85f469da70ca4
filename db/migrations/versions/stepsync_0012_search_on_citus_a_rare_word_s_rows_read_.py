"""search on Citus: a rare word's rows read in the walk's scan

Only the distributed variant changes (docs/contract.md §11): the frozen copies
in db/migrations/sql/stepsync_0012/citus/ (_search_fetch.sql, _search_gather.sql, _search_local.sql, _search_read.sql, _search_row_sql.sql, _search_walk.sql), written by
tools/freeze_revision.py from db/citus/, which stepsync.citus installs on a
Citus coordinator. On one node nothing changes but the revision that schema
stepsync's comment names (stepsync status reads it).

Revision ID: stepsync_0012
Revises: stepsync_0011
Create Date: 2026-12-08
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0012"
down_revision = "stepsync_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
