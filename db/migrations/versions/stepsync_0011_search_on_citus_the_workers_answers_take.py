"""search on Citus: the workers' answers taken as they come; the anchors kept.

Only the distributed variant changes (docs/contract.md §11.4): the frozen copies in
db/migrations/sql/stepsync_0011/citus/, written by tools/freeze_revision.py from
db/citus/, which stepsync.citus installs on a Citus coordinator. On one node nothing
changes but the revision that schema stepsync's comment names (stepsync status reads it).

What a search spent on the coordinator, cut:
  * stepsync._search_gather takes each worker's answer (its walk, the rows it read) row
    by row and puts the walks together in place, instead of an aggregate over the
    distributed query, which Citus plans as a distributed aggregate at every search,
    and a second query that unnested the walks and aggregated them again;
  * stepsync._search_anchors returns the keys it found last, kept in a new column of
    stepsync.search_sample_size (anchors, search_sample.sql; filled by
    stepsync._search_statistics_keep, which refresh_search_statistics() and the install
    call), after one query checks that they still reach each worker once; else it
    finds them again, as before. It runs as the owner now (SECURITY DEFINER): search_steps
    calls it with its caller's rights, and the kept keys are in a table of the owner's;
  * the rows a worker reads with its walk, or for search_steps, come from one new function,
    stepsync._search_read: one prepared statement of the session over the worker's shards
    (its text depends only on which shards are there: each pair's shard is a parameter),
    each row written out as a stepsync.search_row's text in the statement;
    stepsync._search_rows turns them back into rows, stepsync._search_local returns them
    as they come.

Revision ID: stepsync_0011
Revises: stepsync_0010
Create Date: 2026-12-07
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0011"
down_revision = "stepsync_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
