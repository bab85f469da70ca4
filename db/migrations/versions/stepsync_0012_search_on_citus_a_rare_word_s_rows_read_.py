"""search on Citus: a rare word's rows read in the walk's own scan; the anchors checked by the answers.

Only the distributed variant changes (docs/contract.md §11.4): the frozen copies in
db/migrations/sql/stepsync_0012/citus/, written by tools/freeze_revision.py from
db/citus/, which stepsync.citus installs on a Citus coordinator. On one node nothing
changes but the revision that schema stepsync's comment names (stepsync status reads it).

What a rare word's search spent, cut (docs/benchmarks.md, "Citus against one node
(stepsync_0012)"):
  * on a worker, when one scan finds every match (path A), stepsync._search_walk reads
    the rows of its best matches in that same statement (by their primary key, after the
    scan's matches are ranked), instead of stepsync._search_read reading them in a second
    statement after it. The row is made in one place, stepsync._search_row_sql (new),
    which _search_read shares.
    _search_walk takes p_read and p_trees and returns a stepsync.search_gathered;
    _search_fetch takes $17 and returns the rows read (their result types changed: the
    files drop the old signatures first);
  * the coordinator no longer checks the kept anchors before every search: each worker's
    walk names its node and how many shards it walked (stepsync.search_walk gains
    node_group and shards: search_walk.sql adds them to an existing type), and
    stepsync._search_gather checks by them that every shard was walked once; when not, it
    takes stepsync._search_anchors()'s and the workers walk again. stepsync doctor reports
    kept anchors that no longer hold, or none kept;
  * stepsync._search_ranked reads the statistics, the kept anchors and whether the
    workers may read the rows in one statement; the user's account from the coordinator's
    own copy of public.users when Citus executes locally; the title rule's keys only when
    the rule applies; _search_gather keeps the rows in array variables.

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
