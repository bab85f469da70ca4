"""search on Citus: statistics kept, rows read by key

Only the distributed variant changes (docs/contract.md §11): the frozen copies
in db/migrations/sql/stepsync_0010/citus/ (_search_rows.sql, _search_statistics.sql, _search_statistics_keep.sql, refresh_search_statistics.sql, search_sample.sql, search_statistics_keep.sql), written by
tools/freeze_revision.py from db/citus/, which stepsync.citus installs on a
Citus coordinator. On one node nothing changes but the revision that schema
stepsync's comment names (stepsync status reads it).

Revision ID: stepsync_0010
Revises: stepsync_0009
Create Date: 2026-12-07
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0010"
down_revision = "stepsync_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
