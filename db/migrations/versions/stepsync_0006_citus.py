"""stepsync on a Citus cluster: the distributed variant (docs/contract.md §11).

On one node this revision changes nothing but the schema's comment: the
preflight it carries (preflight.sql, read by `stepsync install`, never
installed) gives the same answers with queries that Citus accepts too.

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


def upgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(revision))


def downgrade() -> None:
    frozen.transaction(op, history.schema_comment_sql(down_revision))
