"""The oracle: stepsync.check_library() (issue: proof under concurrency, faults and bad input).

Installs the frozen copy in db/migrations/sql/0005/.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

from stepsync import frozen

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    frozen.install(op, "0005", "check_library.sql")


def downgrade() -> None:
    frozen.execute(op, "DROP FUNCTION stepsync.check_library();")
