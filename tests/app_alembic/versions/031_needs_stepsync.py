"""The application's "most used steps" view, over stepsync's library view: needs stepsync installed.

`depends_on` names stepsync's install revision, stepsync_0002 (not the branch
label "stepsync", which would name its first revision, stepsync_0001, which
installs nothing): `alembic upgrade heads` runs stepsync's revisions before this
one, and `alembic downgrade stepsync@base` downgrades this one first.

Revision ID: 031_needs_stepsync
Revises: 030_add_tags
Create Date: 2026-12-15
"""

from alembic import op

revision = "031_needs_stepsync"
down_revision = "030_add_tags"
branch_labels = None
depends_on = "stepsync_0002"


def upgrade() -> None:
    op.execute("""
        CREATE VIEW public.most_used_steps AS
        SELECT e.id, e.title, e.step_type, e.usage_count, e.source_tree_id
          FROM public.step_library_entries AS e
         WHERE e.is_active
         ORDER BY e.usage_count DESC, e.title
    """)


def downgrade() -> None:
    op.execute("DROP VIEW public.most_used_steps")
