"""On Citus the sync runs its statements on the flow's shard itself

Only the distributed variant changes (docs/contract.md §11): the frozen copies
in db/migrations/sql/stepsync_0007/citus/ (_flow_shard.sql, _sync.sql), written by
tools/freeze_revision.py from db/citus/, which stepsync.citus installs on a
Citus coordinator. On one node nothing changes but the revision that schema
stepsync's comment names (stepsync status reads it).

Revision ID: stepsync_0007
Revises: stepsync_0006
Create Date: 2026-12-07
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0007"
down_revision = "stepsync_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
