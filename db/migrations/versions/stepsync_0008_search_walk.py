"""search: the walk over the library is its own function; on Citus every worker walks its own shards.

stepsync._search_ranked keeps the rule (the caller's rights, the limits, the
cut, the title rule, the order); the walk that finds the matches moves to
stepsync._search_walk (new), which reads the tables it is given, reached
through stepsync._search_gather (new): on one node the walk over
public.step_library, the same statements as before (each run by
stepsync._search_fetch, new), so the same rows. Two row types carry a search
to the walk and back (stepsync.search_request, stepsync.search_walk).
stepsync._search_ranked's result gains tree_key (the row's key on Citus), so
it is dropped and created again, and search_steps reads it.

On a Citus coordinator (docs/contract.md §11.3) the distributed variant of
stepsync._search_gather has every worker walk its own shards at once
(stepsync._search_local), one command a worker through the co-located table
stepsync.search_anchors (db/migrations/sql/stepsync_0008/citus/), and gathers
their matches: the same candidates, so the same rows in the same order; then
search_steps reads the rows on every worker at once, with the caller's rights
(stepsync._search_rows). On the workers each statement is prepared once a
session (stepsync._prepared, new).

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


OBJECTS = ("search_request.sql", "search_walk.sql", "_prepared.sql", "_search_fetch.sql", "_search_walk.sql", "_search_gather.sql",
           "_search_ranked.sql", "search_steps.sql")


def upgrade() -> None:
    frozen.transaction(op, *(frozen.read(revision, name) for name in OBJECTS),
                       history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, "DROP FUNCTION IF EXISTS stepsync._search_ranked(uuid, text, text, text, uuid, integer);",
                       frozen.read("stepsync_0006", "_search_ranked.sql"),
                       frozen.read("stepsync_0005", "search_steps.sql"),
                       "DROP FUNCTION IF EXISTS stepsync._search_gather(stepsync.search_request);",
                       "DROP FUNCTION IF EXISTS stepsync._search_walk(regclass[], stepsync.search_request, boolean);",
                       "DROP FUNCTION IF EXISTS stepsync._search_fetch(text, boolean, stepsync.search_request,"
                       " pg_catalog.tsquery, integer, boolean, integer);",
                       "DROP FUNCTION IF EXISTS stepsync._prepared(text, text);",
                       "DROP TYPE IF EXISTS stepsync.search_walk;",
                       "DROP TYPE IF EXISTS stepsync.search_request;",
                       history.schema_comment_sql(down_revision))
