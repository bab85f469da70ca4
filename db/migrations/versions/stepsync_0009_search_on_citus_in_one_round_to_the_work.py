"""search on Citus in one round to the workers; one node's search back to stepsync_0007's.

stepsync_0008 (landed as written) gave one node a shared walk (stepsync._search_walk,
reached through stepsync._search_gather, each statement run by stepsync._search_fetch,
two row types) that measured 10-28 % slower a search at p50; the walk now belongs to
the distributed variant only. On one node this revision puts back stepsync_0007's
search (stepsync._search_ranked of stepsync_0006, search_steps of stepsync_0005,
frozen again here from db/) and drops what stepsync_0008 added there.

The distributed variant (docs/contract.md §11.4): the frozen copies in
db/migrations/sql/stepsync_0009/citus/, written from db/citus/, which stepsync.citus
installs on a Citus coordinator. A search goes to the workers once: each worker
(stepsync._search_local) walks its own shards and, when the caller's own read would
give the same rows (no row-level security on step_library or trees, SELECT on both),
returns the rows of its best matches with its walk, one row each (stepsync.search_found
carries them back from stepsync._search_gather); search_steps reads any other row with
the caller's rights (stepsync._search_rows). The walk's statements are prepared once a
session on the workers (stepsync._prepared); the coordinator reaches each worker once
through stepsync.search_anchors (stepsync._search_anchors, put back by
stepsync.refresh_search_statistics through stepsync._search_anchors_fill).

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

# What stepsync_0008's upgrade installed on one node, in its order (the downgrade installs it again).
STEPSYNC_0008 = ("search_request.sql", "search_walk.sql", "_prepared.sql", "_search_fetch.sql", "_search_walk.sql",
                 "_search_gather.sql", "_search_ranked.sql", "search_steps.sql")


def upgrade() -> None:
    frozen.transaction(op,
                       # stepsync_0008's result has tree_key: a function's result type can only be dropped.
                       "DROP FUNCTION IF EXISTS stepsync._search_ranked(uuid, text, text, text, uuid, integer);",
                       frozen.read(revision, "_search_ranked.sql"),
                       frozen.read(revision, "search_steps.sql"),
                       "DROP FUNCTION IF EXISTS stepsync._search_gather(stepsync.search_request);",
                       "DROP FUNCTION IF EXISTS stepsync._search_walk(regclass[], stepsync.search_request, boolean);",
                       "DROP FUNCTION IF EXISTS stepsync._search_fetch(text, boolean, stepsync.search_request,"
                       " pg_catalog.tsquery, integer, boolean, integer);",
                       "DROP FUNCTION IF EXISTS stepsync._prepared(text, text);",
                       "DROP TYPE IF EXISTS stepsync.search_walk;",
                       "DROP TYPE IF EXISTS stepsync.search_request;",
                       history.schema_comment_sql(revision))


def downgrade() -> None:
    # stepsync_0008's _search_ranked.sql drops the function itself before creating it (its result has tree_key).
    frozen.transaction(op, *(frozen.read(down_revision, name) for name in STEPSYNC_0008),
                       history.schema_comment_sql(down_revision))
