"""search on Citus: statistics kept; fewer rows brought back from the workers, as text.

Only the distributed variant changes (docs/contract.md §11.4): the frozen copies in
db/migrations/sql/stepsync_0010/citus/, written by tools/freeze_revision.py from
db/citus/, which stepsync.citus installs on a Citus coordinator. On one node nothing
changes but the revision that schema stepsync's comment names (stepsync status reads it).

What a rare word's search spent on the coordinator and the workers, cut:
  * the sample's statistics are kept in stepsync.search_sample_size (two new columns,
    search_sample.sql; stepsync._search_statistics_keep, called by
    stepsync.refresh_search_statistics() and by the install, search_statistics_keep.sql),
    and stepsync._search_statistics reads them there instead of pg_stats;
  * each worker reads the rows of its share of the limit and two standard deviations
    more (15 of 20 with two workers), not the whole limit (stepsync._search_ranked);
    search_steps reads any other row after the walk, as before;
  * the rows come back as their text with their ids (stepsync._search_local,
    stepsync._search_gather, whose results change: each file drops the function first),
    turned back into rows only for the rows a search returns; the row type
    stepsync.search_found, which carried them, goes (stepsync.search_gathered, new);
  * stepsync._search_rows and search_steps type their empty arrays (plpgsql_check);
    their statements are stepsync_0009's.

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
