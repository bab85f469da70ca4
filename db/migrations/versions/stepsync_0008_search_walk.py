"""search on Citus: every worker walks its own shards, and reads its rows, at once.

Only the distributed variant changes (docs/contract.md §11.3): the frozen copies
in db/migrations/sql/stepsync_0008/citus/, written from db/citus/, which
stepsync.citus installs on a Citus coordinator. stepsync._search_ranked's
variant keeps one node's rule, checks and order, and has the walk over the
library (stepsync._search_walk, one node's walk over the tables it is given,
each statement prepared once a session: stepsync._search_fetch,
stepsync._prepared) done by every worker over its own shards
(stepsync._search_local), one command a worker through the co-located table
stepsync.search_anchors (stepsync._search_gather, stepsync._search_anchors);
search_steps then reads the rows on every worker at once, with the caller's
rights (stepsync._search_rows). Row types carry a search to the walk and back
(stepsync.search_request, stepsync.search_walk, stepsync.search_row). On one
node nothing changes but the revision that schema stepsync's comment names
(stepsync status reads it).

Revision ID: stepsync_0008
Revises: stepsync_0007
Create Date: 2026-12-07
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0008"
down_revision = "stepsync_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
