"""on Citus each worker reads the rows of its best matches with its walk.

Only the distributed variant changes (docs/contract.md §11.4): the frozen copies
in db/migrations/sql/stepsync_0009/citus/, written from db/citus/, which
stepsync.citus installs on a Citus coordinator. A search goes to the workers
once, not twice: each worker (stepsync._search_local) returns its walk and, when
the caller's own read would give the same rows (no row-level security on
step_library or trees, SELECT on both), the rows of its best matches, one row
each (a new row type, stepsync.search_found, carries them back from
stepsync._search_gather); search_steps reads any other row with the caller's
rights, as before. stepsync._search_ranked's variant computes the anchors once
a search and keeps its statements' plans. On one node nothing changes but the
revision that schema stepsync's comment names (stepsync status reads it).

Revision ID: stepsync_0009
Revises: stepsync_0008
Create Date: 2026-12-07
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0009"
down_revision = "stepsync_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
