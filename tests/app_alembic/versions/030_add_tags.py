"""Flows get tags.

Revision ID: 030_add_tags
Revises: 029_initial
Create Date: 2025-04-11
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "030_add_tags"
down_revision = "029_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("trees", sa.Column("tags", postgresql.ARRAY(sa.String(50)), nullable=False,
                                     server_default="{}"))


def downgrade() -> None:
    op.drop_column("trees", "tags")
