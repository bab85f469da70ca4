"""stepsync on a Citus cluster: the distributed variant (docs/contract.md §11).

On one node it changes no behaviour:
  * stepsync._search_ranked reads the statistics it estimates from through
    stepsync._search_statistics (new), whose distributed variant reads a
    sample on Citus; on one node the same pg_stats and pg_class as before;
  * the preflight it carries (preflight.sql, read by `stepsync install`,
    never installed) and the TRUNCATE guard give the same answers with
    queries that Citus accepts (a subquery selects 1, never no column).

On a Citus coordinator whose tables have the §11.1 layout, `stepsync install`
does not run revisions stepsync_0002-0005 (their keys and joins are refused
there): stepsync.citus installs this revision's state directly, from the
newest frozen copy of every object, with the distributed variant in
db/migrations/sql/stepsync_0006/citus/ where Citus requires one (db/citus/
is its readable source), then records this revision in stepsync's version
table. A later revision that changes a function with a variant carries both.

Revision ID: stepsync_0006
Revises: stepsync_0005
Create Date: 2026-12-07
"""

from alembic import op

from stepsync import frozen, history

revision = "stepsync_0006"
down_revision = "stepsync_0005"
branch_labels = None
depends_on = None


FUNCTIONS = ("_search_statistics.sql", "_search_ranked.sql", "tg_step_library__guard_truncate.sql")


def upgrade() -> None:
    frozen.transaction(op, *(frozen.read(revision, name) for name in FUNCTIONS),
                       history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, frozen.read("stepsync_0005", "_search_ranked.sql"),
                       frozen.read("stepsync_0004", "tg_step_library__guard_truncate.sql"),
                       "DROP FUNCTION IF EXISTS stepsync._search_statistics();",
                       history.schema_comment_sql(down_revision))
